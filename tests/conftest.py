"""Test setup: tests import the toy task and models from this folder (`from toy import ...`)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


import pytest  # noqa: E402
from slurm_cluster import slurm_cluster  # noqa: E402, F401  (one private SLURM cluster per test process)


@pytest.fixture(scope="session")
def smoke_cache(tmp_path_factory):
    """One data and extractor cache for the command-line smoke runs, as a user's second run would find it."""
    return tmp_path_factory.mktemp("smoke-cache")
