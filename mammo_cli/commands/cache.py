"""``mammo cache clear [cache_dir=<folder>]``: delete the shared backbone-feature cache.

The features of frozen backbones are kept in ``<cache folder>/features`` (the cache
folder: ``cache_dir=``, else ``$MAMMO_CACHE``, else ``~/.cache/mammo``) and reused by
every run that needs the same ones; it is size-bounded (``data.feature_cache_max_gb``).
Clearing it loses nothing but time: entries are recomputed when needed. The demo set in
the same folder is kept.
"""

from __future__ import annotations

from collections.abc import Sequence

from mammo_cli.errors import MammoError

USAGE = "usage: mammo cache clear [cache_dir=<folder>]"


def main(args: Sequence[str]) -> None:
    """Parse ``clear [cache_dir=<folder>]`` and clear the feature cache there."""
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return
    action, *options = args
    values = dict(option.split("=", 1) for option in options if "=" in option)
    if action != "clear" or len(values) != len(options) or set(values) - {"cache_dir"}:
        raise MammoError(f"expected `clear [cache_dir=<folder>]` ({USAGE}); got {' '.join(args)}")
    from mammo_cli.training.feature_store import clear_feature_cache, feature_cache_dir

    folder = feature_cache_dir(values.get("cache_dir"))
    try:
        files, removed = clear_feature_cache(values.get("cache_dir"))
    except OSError as exc:
        raise MammoError(f"cannot clear {folder} ({exc.strerror or exc})") from exc
    print(f"removed {files} feature file(s), {removed / 1e6:.1f} MB, from {folder}")
