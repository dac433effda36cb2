"""Peak resident memory of ``mammo train`` on a full-size course-format set.

Generates a course-format folder of the real set's size (5,352 training patches of
150x150 uint16 = 2,676 abnormality/baseline pairs, plus a small public test split) with
the demo generator into a temporary folder, runs ``mammo train`` on it as a subprocess
(task 2.1, 1 epoch, no progress bar, no logger) and reads the child's peak RSS from
``os.wait4``. Compared with the tensors' size on disk. Run twice: with the default
``trainer.precision`` (auto: bfloat16 on CPUs that have it) and with float32.

    python benchmarks/bench_memory.py [--pairs 2676] [--test-pairs 100] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import emit, json_argument, machine

from mammo_cli.data.synthetic import demo_seeds, generate_pairs


def write_course_set(folder: Path, pairs: int, test_pairs: int) -> int:
    """Write the four course files; return the tensors' bytes on disk."""
    train_seed, test_seed = demo_seeds(7)
    for prefix, n, seed in (("train", pairs, train_seed), ("public_test", test_pairs, test_seed)):
        tensor, labels = generate_pairs(n, seed)
        np.save(folder / f"{prefix}_tensor.npy", tensor)
        np.save(folder / f"{prefix}_labels.npy", labels)
    return sum((folder / f"{p}_tensor.npy").stat().st_size for p in ("train", "public_test"))


def peak_rss(command: list[str], log: Path) -> tuple[int, float]:
    """Run ``command`` (output to ``log``); its peak RSS in bytes and its wall seconds."""
    started = time.perf_counter()
    with log.open("w") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.stderr.write(log.read_text())
        raise SystemExit(f"{' '.join(command[:3])} ... failed")
    return usage.ru_maxrss * 1024, seconds  # KiB on Linux


def main() -> None:
    """Generate the set, train once on it in a child process, report its peak RSS."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=2676, help="training pairs (x2 patches)")
    parser.add_argument("--test-pairs", type=int, default=100, help="public test pairs")
    json_argument(parser)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="mammo-bench-memory-"))
    try:
        started = time.perf_counter()
        tensor_bytes = write_course_set(tmp, args.pairs, args.test_pairs)
        generate_s = time.perf_counter() - started
        mammo = Path(sys.executable).with_name("mammo")
        command = [
            str(mammo),
            "train",
            "task=2.1",
            f"data.dir={tmp}",
            "trainer.epochs=1",
            "trainer.progress=false",
            "logger=none",
        ]
        runs = {
            "default": peak_rss(
                command + [f"hydra.run.dir={tmp / 'default'}"], tmp / "default.log"
            ),
            "float32": peak_rss(
                command + ["trainer.precision=float32", f"hydra.run.dir={tmp / 'float32'}"],
                tmp / "float32.log",
            ),
        }
        policies = {
            name: json.loads((tmp / name / "metrics.json").read_text())["dtype_policy"]
            for name in runs
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    limit = 2 * tensor_bytes + 2**30
    peak, train_s = runs["default"]
    results = {
        "benchmark": "memory",
        "command": " ".join(["mammo", *command[1:3], "data.dir=<tmp>", *command[4:]]),
        "train_patches": 2 * args.pairs,
        "test_patches": 2 * args.test_pairs,
        "tensor_bytes_on_disk": tensor_bytes,
        "peak_rss_bytes": peak,
        "dtype_policy": policies["default"],
        "float32_peak_rss_bytes": runs["float32"][0],
        "target_bytes": limit,
        "peak_over_tensor_bytes": round(peak / tensor_bytes, 2),
        "generate_s": round(generate_s, 1),
        "train_s": round(train_s, 1),
        **machine(),
    }
    print(
        f"tensors on disk {tensor_bytes / 2**20:.0f} MiB, peak RSS of mammo train "
        f"{peak / 2**20:.0f} MiB ({policies['default']}; float32: "
        f"{runs['float32'][0] / 2**20:.0f} MiB), target <= {limit / 2**20:.0f} MiB"
    )
    emit(results, args.json)


if __name__ == "__main__":
    main()
