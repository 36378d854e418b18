"""Test setup: tests import the toy task and models from this folder (`from toy import ...`)."""

import os
import sys
from pathlib import Path

# One OpenMP/BLAS thread per test process, and for the runs the tests start in subprocesses: `make test` runs two
# worker processes on a 2-core machine, and two threads each made OpenMP's waiting threads spin against each other
# (a 12 s OTUS learning test took 60 s of CPU beside another worker). Runs choose their own threads (--cpu-threads).
os.environ.setdefault("OMP_NUM_THREADS", "1")
if "torch" in sys.modules:  # a plugin imported it before this file: the variable came too late for it
    sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
sys.path.insert(0, str(Path(__file__).parent))


import pytest  # noqa: E402
from slurm_cluster import slurm_cluster  # noqa: E402, F401  (one private SLURM cluster per test process)


@pytest.fixture(scope="session")
def smoke_cache(tmp_path_factory):
    """One data and extractor cache for the command-line smoke runs, as a user's second run would find it, shared
    by the session's worker processes (pytest-xdist): each task's data and feature extractor are then built once
    per session, not once per worker. aebench writes its cache files atomically (a temporary file renamed), so
    two workers filling the folder at once at worst build a file twice."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's folder, above each worker's own
    folder = base / "smoke-cache"
    folder.mkdir(exist_ok=True)
    return folder


def pytest_collection_modifyitems(items):
    """The files holding `slow` tests run first. `make test` hands each worker one file at a time in collection
    order (`--dist loadfile --no-loadscope-reorder`; pytest-xdist's default reorder puts the files with the most
    tests first, and so the few-but-long end-to-end files last, where one of them kept a worker busy for minutes
    while the other had nothing left). Long files first, the many short ones fill in behind them."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: the order within each group is kept
