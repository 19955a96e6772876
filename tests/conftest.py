"""Shared fixtures: tiny models, real data from ../shared/data (skipped with a reason if absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MINIGPT_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the clone (CI always has it; a user's clone may not)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (the ../shared/data folder "
                    "beside the clone; set MINIGPT_SHARED_DATA to point elsewhere)")
    return SHARED_DATA


@pytest.fixture
def one_thread():
    """torch on one thread for the test: tiny models gain nothing from more, and on a shared
    2-core machine a second thread makes each small op wait for a core."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:
        has_cuda = False
    # benchmarks/gpu_check.sh --dry runs the gpu tests on the CPU (CUDA-only checks skip inside)
    if not has_cuda and os.environ.get("MINIGPT_GPU_DRY") != "1":
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
