"""Every task, as a new user runs it: `aebench run` in a fresh process on the embedded default data, smoke budget.

The data are generated (GalSim, Pythia 8, the channel and pulse simulators) into one cache shared by these tests,
as a user's second run would find them; each task's own tests check its generator and protocol in detail.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from aebench import results

CASES = {  # task → the baselines run on it (the cheapest that exercise its protocol)
    "hubble2webb": "pix2pix",
    "cdp-twin": "pix2pix,cyclegan",
    "hep-turbosim": "otus,regression",
    "galaxy-generation": "acgan,vae",
    "radio-denoising": "dae",
}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.mark.slow
@pytest.mark.parametrize("task", list(CASES))
def test_smoke_run_from_the_command_line(task, cache_dir, tmp_path):
    out = tmp_path / "results"
    command = [sys.executable, "-m", "aebench", "run", "--task", task, "--models", CASES[task], "--budget", "smoke"]
    done = subprocess.run(
        [*command, "--out", str(out), "--cache-dir", str(cache_dir), "--no-progress"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    folder = out / task
    records = results.load_records(folder)
    models = [r for r in records if r["kind"] == "model"]
    assert {r["model"]["name"] for r in models} == set(CASES[task].split(","))
    assert any(r["kind"] == "reference" for r in records)
    for record in models:
        assert record["status"] == "ok", (record["model"]["name"], record.get("reason"))
        values = [m["value"] for m in record["metrics"].values()]
        assert values and all(v is None or isinstance(v, float) for v in values)
        assert any(v is not None for v in values)
        for metric in record["metrics"].values():  # a missing value always says why
            assert metric["value"] is not None or metric["unavailable"]
        assert record["budget"]["name"] == "smoke" and record["data"]["source"]
        assert (folder / "samples" / f"{record['model']['name']}-seed0.png").read_bytes()[:4] == b"\x89PNG"
    table = (folder / "leaderboard.md").read_text()
    assert done.stdout == table
