"""Training under tf.distribute.MirroredStrategy (several GPUs), on two logical CPUs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Logical devices must be set before TensorFlow starts, so this runs in a fresh process.
SCRIPT = """
import json, sys
from pathlib import Path
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from hydra import compose, initialize_config_module
from mammo_cli.config import register_configs
from mammo_cli.data.dataset import load_task_data
from mammo_cli.runs.pipeline import train_and_evaluate
from mammo_cli.tf_setup import distribution_strategy

register_configs()
overrides = [f"data.dir={sys.argv[1]}", "trainer.epochs=2", "trainer.batch_size=8",
             "trainer.progress=false", "logger=none"]
with initialize_config_module("mammo_cli.conf", version_base="1.3"):
    cfg = compose("train", overrides=overrides)
strategy = distribution_strategy("CPU")  # the several-GPU branch, on two logical CPUs
with strategy.scope():
    inner = distribution_strategy()  # what train_and_evaluate gets inside the scope
    result = train_and_evaluate(cfg, Path(sys.argv[2]), load_task_data(cfg.data, cfg.task))
print(json.dumps({"replicas": strategy.num_replicas_in_sync, "same": inner is strategy,
                  "kind": type(strategy).__name__, "epochs": result["epochs_run"],
                  "accuracy": result["accuracy"]}))
"""


def test_training_runs_with_one_replica_per_device(tiny_course, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tiny_course), str(run)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["kind"] == "MirroredStrategy" and summary["same"]
    assert summary["replicas"] == 2 and summary["epochs"] == 2
    assert 0.0 <= summary["accuracy"] <= 1.0
    saved = json.loads(Path(run / "metrics.json").read_text())
    assert saved["epochs_run"] == 2 and (run / "model.keras").is_file()
