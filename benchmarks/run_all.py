"""Run every benchmark, print one table and write ``benchmarks/results.json`` (``make bench``).

Each benchmark runs in its own process (clean TensorFlow state, its own peak memory),
one after the other, so that they never compete for the CPU:

- bench_pipeline.py: training throughput and accuracy, mammo vs the study's pipeline;
- bench_feature_cache.py: seconds per VGG16 head epoch, cached vs uncached features,
  and a 4-split VGG16 holdout with a cold vs a warm feature cache;
- bench_memory.py: peak RSS of ``mammo train`` on a full-size course-format set;
- bench_startup.py: ``mammo --help`` and two config errors (a misspelt key, a value out
  of range), without TensorFlow.

Targets (issue 9, read from the table): pipeline >= 1.8x at equal accuracy (+-1
point); feature cache >= 20x per head epoch; peak RSS <= 2x tensor bytes + 1 GiB;
``mammo --help`` < 1 s; a holdout with a warm feature cache >= 3x faster than cold.

    python benchmarks/run_all.py [--quick] [--only pipeline,startup,...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mammo_cli.files import write_json

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.json"
#: name -> (script, arguments for the full run, arguments for --quick)
BENCHMARKS = {
    "pipeline": (
        "bench_pipeline.py",
        ["--epochs", "20", "--seeds", "10", "--bf16"],
        ["--epochs", "3", "--seeds", "1", "--bf16"],
    ),
    "feature_cache": (
        "bench_feature_cache.py",
        [],
        ["--train", "128", "--epochs", "3", "--holdout-pairs", "500", "--holdout-epochs", "1"],
    ),
    "memory": ("bench_memory.py", [], ["--pairs", "500", "--test-pairs", "50"]),
    "startup": ("bench_startup.py", ["--runs", "7"], ["--runs", "3"]),
}


def run_benchmark(name: str, quick: bool, scratch: Path) -> dict[str, Any]:
    """Run one benchmark script in a child process; return its results (or the failure)."""
    script, full, short = BENCHMARKS[name]
    out = scratch / f"{name}.json"
    command = [sys.executable, str(HERE / script), *(short if quick else full), "--json", str(out)]
    print(f"$ {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    done = subprocess.run(command)
    elapsed = round(time.perf_counter() - started, 1)
    if done.returncode != 0 or not out.is_file():
        return {"benchmark": name, "error": f"exit status {done.returncode}", "wall_s": elapsed}
    return {**json.loads(out.read_text()), "wall_s": elapsed}


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def rows(results: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str, str, str]]:
    """(benchmark, measure, mammo, reference, ratio, target) rows for the table."""
    out = []
    p = results.get("pipeline", {})
    if "mammo" in p:
        mammo, study = p["mammo"], p["study"]
        reference = "study fp32 (ImageDataGenerator)"
        bf16_default = p.get("default_precision") == "mixed_bfloat16" and "mammo_bf16" in p
        if bf16_default:  # trainer.precision=auto picks bfloat16 on this CPU
            pairs = [
                ("mammo default (bf16)", p["mammo_bf16"], reference, study, "a: >= 1.8x"),
                ("mammo fp32", mammo, reference, study, ""),
            ]
        else:
            pairs = [("mammo fp32 (default)", mammo, reference, study, "a: >= 1.8x")]
        if "no_augmentation" in p:
            pairs.append(
                ("fp32 training step alone", p["no_augmentation"], "study fp32", study, "")
            )
        if "mammo_bf16" in p:  # the evidence for trainer.precision=auto
            note = "auto: bf16 here" if bf16_default else "(opt-in here)"
            pairs.append(("mammo bf16", p["mammo_bf16"], "mammo fp32", mammo, note))
        for mine_name, mine, ref_name, ref, target in pairs:
            out.append(
                (
                    f"scratch 2.1 + mass_calc aug, {p['train_images']} images",
                    f"{mine_name} vs {ref_name}: images/s",
                    f"{mine['images_per_s']:.1f}",
                    f"{ref['images_per_s']:.1f}",
                    f"{mine['images_per_s'] / ref['images_per_s']:.2f}x",
                    target,
                )
            )
            points = 100 * (mine["test_accuracy"] - ref["test_accuracy"])
            out.append(
                (
                    "",
                    f"  test accuracy after {p['epochs']} epochs ({p['test_images']} images), "
                    f"mean +- sd of {p['seeds']} seeds",
                    f"{mine['test_accuracy']:.3f} +- {mine['test_accuracy_std']:.3f}",
                    f"{ref['test_accuracy']:.3f} +- {ref['test_accuracy_std']:.3f}",
                    f"{points:+.1f} pt",
                    "+-1 pt" if target.startswith("a") else "",
                )
            )
        if mammo.get("input_only_images_per_s"):
            alone, ref_alone = mammo["input_only_images_per_s"], study["input_only_images_per_s"]
            out.insert(
                2,
                (
                    "",
                    "  input pipeline alone (augmentation, no training): images/s",
                    f"{alone:.0f}",
                    f"{ref_alone:.0f}",
                    f"{alone / ref_alone:.1f}x",
                    "",
                ),
            )
    f = results.get("feature_cache", {})
    if "cached_s_per_epoch" in f:
        out.append(
            (
                f"VGG16 fe head epoch, {f['train_patches']}+{f['val_patches']} patches",
                "s per epoch: cached features vs recomputing the base",
                f"{f['cached_s_per_epoch']:.3f} s",
                f"{f['uncached_s_per_epoch']:.3f} s",
                f"{f['speedup_per_epoch']:.1f}x",
                "b: >= 20x",
            )
        )
    h = f.get("holdout", {})
    if "warm_s" in h:
        train, val, test = h["train_val_test_patches"]
        out.append(
            (
                f"VGG16 fe holdout k=4, {train}+{val}+{test} patches, {h['epochs']} epochs",
                "wall time of the holdout: warm feature cache vs cold",
                f"{h['warm_s']:.1f} s",
                f"{h['cold_s']:.1f} s",
                f"{h['speedup']:.1f}x",
                "e: >= 3x",
            )
        )
    m = results.get("memory", {})
    if "peak_rss_bytes" in m:
        out.append(
            (
                f"mammo train, 1 epoch, {m['train_patches']:,} train patches",
                f"peak RSS ({m['dtype_policy']}, the default here) vs tensors on disk (uint16)",
                mib(m["peak_rss_bytes"]),
                mib(m["tensor_bytes_on_disk"]),
                f"{m['peak_over_tensor_bytes']:.2f}x",
                f"c: <= {mib(m['target_bytes'])}",
            )
        )
        out.append(
            (
                "",
                "  same with trainer.precision=float32",
                mib(m["float32_peak_rss_bytes"]),
                mib(m["tensor_bytes_on_disk"]),
                f"{m['float32_peak_rss_bytes'] / m['tensor_bytes_on_disk']:.2f}x",
                "",
            )
        )
    s = results.get("startup", {})
    for key in ("help", "train_help", "config_error", "config_value_error"):
        if key in s:
            case = s[key]
            out.append(
                (
                    "start-up" if key == "help" else "",
                    f"{case['command']} (median of {s['runs']})",
                    f"{case['median_s']:.3f} s",
                    "",
                    "",
                    ("d: < 1 s; " if key == "help" else "")
                    + (f"exit {case['exit_code']}; " if key.startswith("config") else "")
                    + ("imports TF!" if case["imports_tensorflow"] else "no TF import"),
                )
            )
    for name, result in results.items():
        if "error" in result:
            out.append((name, "FAILED", result["error"], "", "", ""))
    return out


def print_table(results: dict[str, dict[str, Any]], load: list[float]) -> None:
    """The one table of all results (wide enough for a log file when not on a terminal)."""
    table = Table(
        title=f"mammo benchmarks ({os.cpu_count()} CPUs, load average at start {load[0]})"
    )
    for column in ("benchmark", "measure", "mammo", "reference", "ratio", "target"):
        table.add_column(column, justify="right" if column in ("mammo", "ratio") else "left")
    for row in rows(results):
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 170).print(table)


def main() -> None:
    """Run the selected benchmarks in turn, print the table, write results.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the suite")
    parser.add_argument(
        "--only", default=",".join(BENCHMARKS), help="comma-separated benchmark names"
    )
    parser.add_argument("--json", type=Path, default=RESULTS, help="write the results here")
    parser.add_argument("--show", action="store_true", help="only print the table of --json")
    args = parser.parse_args()
    if args.show:
        saved = json.loads(args.json.read_text())
        print_table(saved["benchmarks"], saved["load_average_at_start"])
        return
    names = [n for n in args.only.split(",") if n]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; expected {', '.join(BENCHMARKS)}")

    load = [round(v, 2) for v in os.getloadavg()]
    with tempfile.TemporaryDirectory(prefix="mammo-bench-") as scratch:
        results = {name: run_benchmark(name, args.quick, Path(scratch)) for name in names}
    print_table(results, load)
    write_json(
        args.json,
        {"quick": args.quick, "load_average_at_start": load, "benchmarks": results},
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
