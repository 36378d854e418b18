"""End to end, as a user runs it: the CLI in a fresh process, on the real task and on a killed-and-resumed run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aebench import results
from toy import spec

ROOT = Path(__file__).resolve().parent.parent


def aebench(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aebench", *args], capture_output=True, text=True, **kwargs)


@pytest.mark.slow
def test_smoke_run_of_every_baseline_and_an_outside_model(tmp_path, smoke_cache):
    outside = f"{ROOT / 'examples' / 'my_model.py'}:MLPAutoencoder"
    done = aebench(
        "run",
        "--task",
        "mnist-sharpness",
        "--models",
        f"ae,vae,wae,pie,{outside}",
        "--budget",
        "smoke",
        "--out",
        str(tmp_path / "results"),
        "--cache-dir",
        str(smoke_cache),
        "--no-progress",
    )
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "results" / "mnist-sharpness"
    records = {r["model"]["name"]: r for r in results.load_records(folder)}
    assert set(records) == {"True (real test digits)", "ae", "vae", "wae", "pie", "mlp-ae"}
    for name, record in records.items():
        assert record["status"] == "ok", (name, record.get("reason"))
        assert record["metrics"]["sharpness"]["value"] > 0
        assert record["metrics"]["fid"]["extractor"]["name"] == "mnist-digit-cnn"
        if record["kind"] == "model":
            assert record["model"]["config"]["latent_dim"] == 8  # the task's protocol
            assert (folder / "samples" / f"{name}-smoke-seed0.png").stat().st_size > 1000
    table = (folder / "leaderboard.md").read_text()
    assert done.stdout == table
    for name in ("| ae | 1 |", "| pie | 1 |", "| mlp-ae | 1 |", "| True (real test digits) | – |"):
        assert name in table


def test_a_killed_run_resumes_to_the_result_of_an_uninterrupted_one(tmp_path):
    common = [
        "--task",
        spec("ToyTask"),
        "--models",
        spec("ToyAE"),
        "--budget",
        "long",
        "--no-progress",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    whole = aebench("run", *common, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr

    out = tmp_path / "killed"
    checkpoint = out / "toy" / "checkpoints" / "toy-ae-long-seed0.pt"
    process = subprocess.Popen(
        [sys.executable, "-m", "aebench", "run", *common, "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert checkpoint.exists() and not (out / "toy" / "records" / "toy-ae-long-seed0.json").exists()
    saved = checkpoint.read_bytes()
    forgotten = aebench("run", *common, "--out", str(out))  # without --resume: refused, the checkpoint kept
    assert forgotten.returncode == 2 and "--resume continues it" in forgotten.stderr
    assert checkpoint.read_bytes() == saved

    resumed = aebench("run", *common, "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((tmp_path / "whole" / "toy" / "records" / "toy-ae-long-seed0.json").read_text())
    b = json.loads((out / "toy" / "records" / "toy-ae-long-seed0.json").read_text())
    assert b["resumed"] is True
    assert b["final_losses"] == a["final_losses"] and b["metrics"] == a["metrics"]
