"""What produced a run: versions, machine, command line, and the identity of its data.

:func:`collect_provenance` gathers the facts into a JSON-ready dict (a run folder's
``provenance.json``); data files are identified by their sha256
(:mod:`mammo_cli.data.fingerprints`), not their path, so runs can be checked to have seen
the same bytes. :func:`differences` says which data files, versions or devices differ
between runs.

No TensorFlow here: versions come from the installed distributions' metadata, and GPUs
are listed only when TensorFlow is already loaded in the process (a command that never
imported TensorFlow computed nothing on a GPU); otherwise ``gpu.probed`` is false.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from mammo_cli.data.fingerprints import TEST_FILES, data_identity, fingerprint_files

#: what provenance.json's layout is; bumped when keys change meaning
SCHEMA = 1
#: name in provenance.json -> installed distributions that provide it (first found wins)
DISTRIBUTIONS = {
    "mammo": ("mammo-cli",),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos"),
    "keras": ("keras",),
    "numpy": ("numpy",),
    "scikit-learn": ("scikit-learn",),
    "scipy": ("scipy",),
    "hydra": ("hydra-core",),
    "omegaconf": ("omegaconf",),
}
#: /proc/cpuinfo flags of CPUs that compute bfloat16 natively (AVX-512 BF16, AMX)
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
_GIT_TIMEOUT_S = 5
_PACKAGE_DIR = Path(__file__).resolve().parent


def installed_versions() -> dict[str, str | None]:
    """Python's version and each of :data:`DISTRIBUTIONS`' (None when not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name, candidates in DISTRIBUTIONS.items():
        versions[name] = None
        for distribution in candidates:
            try:
                versions[name] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    return versions


def _git(package_dir: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=package_dir,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout if result.returncode == 0 else None


def git_state(package_dir: Path = _PACKAGE_DIR) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the checkout ``package_dir`` is tracked in, else None.

    None when git is missing, slow, or ``package_dir`` is not tracked by a repository
    (an installed copy inside some other project's ignored ``.venv`` included).
    """
    if _git(package_dir, "ls-files", "--error-unmatch", "--", "__init__.py") is None:
        return None
    commit = _git(package_dir, "rev-parse", "HEAD")
    status = _git(package_dir, "status", "--porcelain")
    if commit is None or status is None:
        return None
    return {"commit": commit.strip(), "dirty": bool(status.strip())}


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_has_native_bfloat16() -> bool:
    """Whether this (Linux) CPU computes bfloat16 in hardware; False where unknown."""
    flags = _cpuinfo().split()
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what :mod:`platform` knows."""
    for line in _cpuinfo().splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return platform.processor() or platform.machine() or "unknown"


def gpu_state() -> dict[str, Any]:
    """``{"probed", "names"}``: the GPUs TensorFlow sees, if TensorFlow is already loaded."""
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return {"probed": False, "names": []}
    names = []
    for device in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(device)
        names.append(details.get("device_name", device.name))
    return {"probed": True, "names": names}


def collect_provenance(
    command: str,
    argv: list[str],
    overrides: list[str],
    data_files: Mapping[str, Path],
    started: datetime,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """Everything provenance.json records about a run (JSON-ready).

    ``data_files`` maps a name (the course file name, e.g. ``public_test_tensor.npy``)
    to the file read; ``cache_dir`` holds the fingerprint cache (default: mammo's cache
    folder). A naive ``started`` is taken as local time.
    """
    if cache_dir is None:
        from mammo_cli.data.source import default_cache_dir

        cache_dir = default_cache_dir()
    return {
        "schema": SCHEMA,
        "command": command,
        "argv": list(argv),
        "overrides": list(overrides),
        "started": started.astimezone().isoformat(),
        "versions": installed_versions(),
        "git": git_state(),
        "platform": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
        },
        "cpu": {"model": cpu_model(), "native_bfloat16": cpu_has_native_bfloat16()},
        "gpu": gpu_state(),
        "data": fingerprint_files(data_files, cache_dir),
    }


def _mammo_text(provenance: Mapping[str, Any]) -> str | None:
    version = provenance.get("versions", {}).get("mammo")
    git = provenance.get("git")
    if git is None:
        return version
    return f"{version} ({git['commit'][:12]}{', modified' if git['dirty'] else ''})"


def _device_text(provenance: Mapping[str, Any]) -> str | None:
    cpu, gpu = provenance.get("cpu"), provenance.get("gpu")
    if cpu is None:
        return None
    text = cpu["model"] + (" (bfloat16)" if cpu["native_bfloat16"] else "")
    if gpu and gpu["names"]:
        text += " + " + ", ".join(gpu["names"])
    return text


def key_facts(provenance: Mapping[str, Any]) -> dict[str, str | None]:
    """The facts a reader checks first, as text: for metrics.json and the HTML report."""
    versions = provenance.get("versions", {})
    data = provenance.get("data", {})
    return {
        "mammo": _mammo_text(provenance),
        **{name: versions.get(name) for name in ("tensorflow", "keras", "numpy", "python")},
        "device": _device_text(provenance),
        "data": data_identity(data) if data else None,
        "test_data": data_identity(data, TEST_FILES) if set(TEST_FILES) & set(data) else None,
        "started": provenance.get("started"),
    }


@dataclass(frozen=True)
class Difference:
    """One fact that is not the same in every run: ``kind`` data | version | device."""

    kind: str
    #: the data file name, the package (``mammo`` includes its commit), or ``device``
    name: str
    #: run -> the value it recorded (a data file's sha256); None where not recorded
    values: dict[str, str | None]

    def groups(self) -> list[tuple[str | None, list[str]]]:
        """(value, runs having it), in the order the runs were given."""
        grouped: dict[str | None, list[str]] = {}
        for run, value in self.values.items():
            grouped.setdefault(value, []).append(run)
        return list(grouped.items())

    def shown(self, value: str | None) -> str:
        """A value as tables print it: a data file's sha256 cut to 12 digits, ``absent``."""
        if value is None:
            return "absent"
        return value[:12] if self.kind == "data" else value

    def note(self) -> str:
        """One sentence, e.g. ``tensorflow differs: 2.21.0 (a, b); 2.20.0 (c)``."""
        parts = [f"{self.shown(value)} ({', '.join(runs)})" for value, runs in self.groups()]
        what = f"data file {self.name}" if self.kind == "data" else self.name
        return f"{what} differs: {'; '.join(parts)}"


def _facts(provenance: Mapping[str, Any], files: Iterable[str] | None) -> dict[tuple, Any]:
    data = provenance.get("data", {})
    names = data if files is None else files
    facts: dict[tuple, Any] = {("data", name): data.get(name, {}).get("sha256") for name in names}
    for name, version in provenance.get("versions", {}).items():
        facts["version", name] = _mammo_text(provenance) if name == "mammo" else version
    facts["device", "device"] = _device_text(provenance)
    return facts


def differences(
    provenances: Mapping[str, Mapping[str, Any]], files: Iterable[str] | None = None
) -> list[Difference]:
    """The data files, versions and devices that differ between runs (name -> provenance).

    ``files`` restricts the data comparison to those names (e.g. :data:`TEST_FILES`);
    by default every data file any run recorded is compared.
    """
    files = None if files is None else list(files)
    facts = {run: _facts(provenance, files) for run, provenance in provenances.items()}
    keys: list[tuple] = []
    for run_facts in facts.values():
        keys += [key for key in run_facts if key not in keys]
    found = []
    for kind, name in keys:
        values = {run: run_facts.get((kind, name)) for run, run_facts in facts.items()}
        if len(set(values.values())) > 1:
            found.append(Difference(kind, name, values))
    return found


def compare_provenance(
    a: Mapping[str, Any], b: Mapping[str, Any], files: Iterable[str] | None = None
) -> dict[str, dict[str, list[str | None]]]:
    """What differs between runs ``a`` and ``b``, JSON-ready: kind -> name -> [a, b].

    E.g. ``{"data": {"public_test_tensor.npy": [sha_a, sha_b]}, "version": {}, "device": {}}``;
    ``compare_provenance(a, b, TEST_FILES)["data"]`` is empty iff both saw the same test set.
    """
    found: dict[str, dict[str, list[str | None]]] = {"data": {}, "version": {}, "device": {}}
    for difference in differences({"a": a, "b": b}, files):
        found[difference.kind][difference.name] = [
            difference.values["a"],
            difference.values["b"],
        ]
    return found
