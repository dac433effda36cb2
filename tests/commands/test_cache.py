"""`mammo cache clear`: the feature cache goes, the demo set stays."""

from __future__ import annotations

import numpy as np

from mammo_cli.training.feature_store import FeatureStore, feature_cache_dir
from tests.helpers import assert_user_error, run_mammo


def test_cache_clear_removes_the_features_and_keeps_the_demo_set(tmp_path):
    cache = tmp_path / "cache_here"
    store = FeatureStore(feature_cache_dir(cache), max_bytes=10**9)
    assert store.save("a" * 64, [np.zeros((4, 8), np.float32)])
    demo = cache / "demo-x"
    demo.mkdir(parents=True)
    (demo / "train_tensor.npy").write_bytes(b"kept")
    result = run_mammo("cache", "clear", f"cache_dir={cache}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "removed 1 feature file(s)" in result.stdout
    assert store.files() == [] and (demo / "train_tensor.npy").read_bytes() == b"kept"


def test_cache_refuses_other_actions(tmp_path):
    assert_user_error(run_mammo("cache", "wipe", cwd=tmp_path), "expected `clear")
