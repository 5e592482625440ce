"""Shared test fixtures: the real-data directory and quiet TensorFlow."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """Real public data: $SEMMATCH_DATA_DIR, else ../shared/data beside the repository."""
    return Path(os.environ.get("SEMMATCH_DATA_DIR", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = data_dir()
    if not root.is_dir():
        pytest.skip(f"real data not found at {root} (set SEMMATCH_DATA_DIR)")
    return root


def real_file(relative: str) -> Path:
    """A file under the real-data directory, or skip the test when it is absent."""
    path = data_dir() / relative
    if not path.exists():
        pytest.skip(f"real data file {path} not found (set SEMMATCH_DATA_DIR)")
    return path
