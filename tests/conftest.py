"""Shared fixtures: tiny course-format folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from mammo_cli.data.synthetic import generate_pairs
from tests.helpers import write_course


@pytest.fixture(scope="session")
def tiny_course(tmp_path_factory) -> Path:
    """A small but complete course folder: 40 training pairs, 16 test pairs."""
    folder = tmp_path_factory.mktemp("tiny_course")
    return write_course(folder, generate_pairs(40, seed=1), generate_pairs(16, seed=2))
