"""The SLURM executor on a real one-node cluster (tests/slurm_cluster.py): the same grid gives the same records
and leaderboard through the in-process, local-parallel and SLURM executors; a job that SLURM interrupts is requeued
and ends with the record of an uninterrupted run; bad resources are one-line errors before anything trains."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from aebench import executors
from aebench.cli import main
from toy import spec


def aebench(*args: str, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """The CLI in a fresh process; `env`: the cluster's client variables, on top of this environment."""
    return subprocess.run([sys.executable, "-m", "aebench", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)  # fmt: skip


def model_metrics(folder: Path) -> dict:
    return {
        path.name: {k: v["value"] for k, v in json.loads(path.read_text())["metrics"].items()}
        for path in sorted((folder / "records").glob("*.json"))
        if not path.name.startswith("reference")
    }


def test_the_same_grid_gives_the_same_records_through_every_executor(slurm_cluster, smoke_cache, tmp_path):
    grid = ["run", "--task", "mnist-sharpness", "--models", "ae,vae", "--seeds", "0,1", "--budget", "smoke",
            "--cache-dir", str(smoke_cache), "--no-progress"]  # fmt: skip
    outs = {name: tmp_path / name for name in ("in-process", "local", "slurm")}
    extra = {"in-process": [], "local": ["--jobs", "2"],
             "slurm": ["--executor", "slurm", "--slurm", f"partition={slurm_cluster.partition}",
                       "--slurm", "time_min=20", "--slurm", "mem_gb=2"]}  # fmt: skip
    for name, out in outs.items():
        done = aebench(*grid, "--out", str(out), *extra[name], env=slurm_cluster.env)
        assert done.returncode == 0, (name, done.stderr[-3000:])
    folders = {name: out / "mnist-sharpness" for name, out in outs.items()}
    reference = model_metrics(folders["in-process"])
    assert len(reference) == 4
    for name in ("local", "slurm"):
        assert model_metrics(folders[name]) == reference, name
        assert (folders[name] / "leaderboard.md").read_text() == (folders["in-process"] / "leaderboard.md").read_text()
    record = json.loads((folders["slurm"] / "records" / "ae-smoke-seed0.json").read_text())
    assert record["executor"]["name"] == "slurm" and record["executor"]["slurm_job_id"]
    assert record["executor"]["resources"]["partition"] == slurm_cluster.partition
    assert record["executor"]["resources"]["time_min"] == 20


def test_an_interrupted_slurm_job_requeues_and_ends_with_the_uninterrupted_record(slurm_cluster, tmp_path):
    common = ["run", "--task", spec("ToyTask"), "--models", spec("ToyAE"), "--budget", "long",
              "--cache-dir", str(tmp_path / "cache"), "--no-progress"]  # fmt: skip
    plain = aebench(*common, "--out", str(tmp_path / "plain"))
    assert plain.returncode == 0, plain.stderr
    out = tmp_path / "slurm"
    submitted = aebench(*common, "--out", str(out), "--executor", "slurm", "--detach",
                        "--slurm", f"partition={slurm_cluster.partition}", env=slurm_cluster.env)  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    grid_file = executors.latest_grids(out)[0]
    entry = executors.load_grid(grid_file)["jobs"][0]
    marker = out / "toy" / "running" / "toy-ae-long-seed0.json"
    checkpoint = out / "toy" / "checkpoints" / "toy-ae-long-seed0.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists():  # running, past its first checkpoint
        assert time.monotonic() < deadline, "the SLURM job never wrote a checkpoint"
        time.sleep(0.2)
    # what SLURM sends signal_delay_s before the time limit (submitit's own test helper, Job._interrupt, does this)
    slurm_cluster.run("scancel", entry["slurm_job_id"], "--signal", "USR2")
    final = aebench("status", str(out), "--watch", env=slurm_cluster.env, timeout=300)
    assert final.returncode == 0, final.stdout
    assert not marker.exists()
    ours = json.loads((out / "toy" / "records" / "toy-ae-long-seed0.json").read_text())
    theirs = json.loads((tmp_path / "plain" / "toy" / "records" / "toy-ae-long-seed0.json").read_text())
    assert ours["resumed"] is True and int(ours["executor"]["slurm_restarts"]) >= 1
    assert ours["metrics"] == theirs["metrics"] and ours["final_losses"] == theirs["final_losses"]
    assert "| toy-ae | 1 |" in (out / "toy" / "leaderboard.md").read_text()  # the last job rebuilt it


def test_bad_slurm_resources_are_one_line_errors_before_anything_runs(slurm_cluster, tmp_path, monkeypatch, capsys):
    for name, value in slurm_cluster.env.items():
        monkeypatch.setenv(name, value)
    common = ["run", "--task", spec("ToyTask"), "--models", spec("ToyAE"), "--out", str(tmp_path / "out"),
              "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--executor", "slurm"]  # fmt: skip
    config = tmp_path / "slurm.toml"
    config.write_text("partition = [unclosed\n")
    for args, words in (
        (["--slurm", "partiton=debug"], "unknown key 'partiton'"),
        (["--slurm", "time_min=-5"], "time_min"),
        (["--slurm", "partition=no-such-partition"], "no partition 'no-such-partition' on this cluster (known: debug)"),
        (["--slurm-config", str(config)], "not valid TOML"),
    ):
        assert main([*common, *args]) == 2, args
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, err
    assert not list((tmp_path / "out" / "toy" / "records").glob("toy-ae*"))
    config.write_text(f'[slurm]\npartition = "{slurm_cluster.partition}"\ntime_min = 7\n')
    from aebench.slurm import resources_from

    resources = resources_from(config, ["cpus_per_job=2"])
    assert (resources.partition, resources.time_min, resources.cpus_per_job) == (slurm_cluster.partition, 7, 2)
