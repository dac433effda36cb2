"""Start-up: wall time of ``mammo --help`` and of config errors, each a fresh process.

Runs the installed ``mammo`` console script several times per case, interleaved, and
reports the median wall time; then checks, in a process running the same entry point,
whether TensorFlow was imported (it must not be: DESIGN, rules of the house).

    python benchmarks/bench_startup.py [--runs 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import emit, json_argument, machine

CASES = {
    "help": ["--help"],
    "train_help": ["train", "--help"],  # Hydra composes and prints the train config
    "config_error": ["train", "trainer.epoch=3"],  # a misspelt key: refused before TF
    "config_value_error": ["train", "trainer.batch_size=0"],  # out of range: refused before TF
}
PROBE = (
    "import sys\n"
    "from mammo_cli.cli import main\n"
    "main(sys.argv[1:])\n"
    "sys.stderr.write('\\nTENSORFLOW_IMPORTED=%s\\n' % ('tensorflow' in sys.modules))\n"
)


def main() -> None:
    """Time each case, then probe each for a TensorFlow import."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per case")
    json_argument(parser)
    args = parser.parse_args()

    mammo = str(Path(sys.executable).with_name("mammo"))
    seconds: dict[str, list[float]] = {name: [] for name in CASES}
    exit_codes: dict[str, int] = {}
    for _ in range(args.runs):
        for name, argv in CASES.items():
            started = time.perf_counter()
            done = subprocess.run([mammo, *argv], capture_output=True)
            seconds[name].append(time.perf_counter() - started)
            exit_codes[name] = done.returncode
    results: dict = {"benchmark": "startup", "runs": args.runs, **machine()}
    for name, argv in CASES.items():
        probe = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True)
        imported = "TENSORFLOW_IMPORTED=True" in probe.stderr
        median = float(np.median(seconds[name]))
        results[name] = {
            "command": " ".join(["mammo", *argv]),
            "median_s": round(median, 3),
            "seconds": [round(s, 3) for s in seconds[name]],
            "exit_code": exit_codes[name],
            "imports_tensorflow": imported,
        }
        print(
            f"mammo {' '.join(argv):<32} median {median:.3f} s (exit {exit_codes[name]}), "
            f"TensorFlow imported: {imported}"
        )
    emit(results, args.json)


if __name__ == "__main__":
    main()
