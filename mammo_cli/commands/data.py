"""``mammo data demo out=DIR``: write the built-in demo set as a course-format folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mammo_cli.errors import MammoError

USAGE = "usage: mammo data demo out=<folder>"


def main(args: Sequence[str]) -> None:
    """Parse ``demo out=<folder>`` and write the four .npy files there."""
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return
    action, *options = args
    if action != "demo":
        raise MammoError(f"unknown data action '{action}' ({USAGE})")
    values = dict(option.split("=", 1) for option in options if "=" in option)
    unknown = [o for o in options if "=" not in o or o.split("=", 1)[0] != "out"]
    if unknown or "out" not in values:
        raise MammoError(
            f"expected exactly out=<folder> ({USAGE}); got {' '.join(options) or 'nothing'}"
        )
    from mammo_cli.data.synthetic import write_demo_set

    out = Path(values["out"]).expanduser()
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_demo_set(out)
    except OSError as exc:
        raise MammoError(f"cannot write the demo set to {out} ({exc.strerror or exc})") from exc
    print(f"wrote the demo set (course format) to {out}")
