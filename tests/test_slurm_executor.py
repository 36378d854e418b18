"""The SLURM executor on a real one-node cluster (tests/slurm_cluster.py): the same grid gives the same records
and leaderboard through the in-process, local-parallel and SLURM executors; a job that SLURM interrupts is requeued
and ends with the record of an uninterrupted run; bad resources are one-line errors before anything trains."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


@pytest.mark.slow
def test_the_same_grid_gives_the_same_records_through_every_executor(slurm_cluster, smoke_cache, tmp_path):
    # narrower nets (hidden 8 channels instead of 32) and one seed keep the 6 trainings short (two models: a job
    # array of two); the protocol is the smoke budget's
    grid = ["run", "--task", "mnist-sharpness", "--models", "ae,vae", "--seeds", "0", "--budget", "smoke",
            "--model-args", "ae.hidden=8", "--model-args", "vae.hidden=8", "--cache-dir", str(smoke_cache),
            "--no-progress"]  # fmt: skip
    outs = {name: tmp_path / name for name in ("in-process", "local", "slurm")}
    extra = {"in-process": [], "local": ["--jobs", "2"],
             "slurm": ["--executor", "slurm", "--slurm", f"partition={slurm_cluster.partition}",
                       "--slurm", "time_min=20", "--slurm", "mem_gb=2"]}  # fmt: skip
    for name, out in outs.items():
        done = aebench(*grid, "--out", str(out), *extra[name], env=slurm_cluster.env)
        assert done.returncode == 0, (name, done.stderr[-3000:])
    folders = {name: out / "mnist-sharpness" for name, out in outs.items()}
    reference = model_metrics(folders["in-process"])
    assert len(reference) == 2
    for name in ("local", "slurm"):
        assert model_metrics(folders[name]) == reference, name
        assert (folders[name] / "leaderboard.md").read_text() == (folders["in-process"] / "leaderboard.md").read_text()
    record = json.loads((folders["slurm"] / "records" / "ae@hidden=8-smoke-seed0.json").read_text())
    assert record["executor"]["name"] == "slurm" and record["executor"]["slurm_job_id"]
    assert record["executor"]["resources"]["partition"] == slurm_cluster.partition
    assert record["executor"]["resources"]["time_min"] == 20
    again = aebench(*grid, "--out", str(outs["slurm"]), env=slurm_cluster.env)  # in-process, the same identities
    assert again.returncode == 0 and again.stderr.count(": reused") == 2, again.stderr
    assert model_metrics(folders["slurm"]) == reference


@pytest.mark.slow
def test_a_requeued_slurm_job_resumes_and_a_failing_one_stops_nothing(slurm_cluster, tmp_path):
    """Seed 0 is signalled as SLURM does before a time limit or a preemption, requeues itself and ends with the
    record of an uninterrupted run; the crashing model fails on its node with its error while the rest of the grid
    finishes; the same command again reuses every finished run and trains nothing. The requeue takes its harder
    path: its `scontrol requeue` is ended by the requeue before it returns (aebench.slurm.survive_own_requeue)."""
    common = ["run", "--task", spec("ToyTask"), "--budget", "long", "--seeds", "0,1", "--cache-dir",
              str(tmp_path / "cache"), "--no-progress"]  # fmt: skip
    plain = aebench(*common, "--models", spec("SlowAE"), "--out", str(tmp_path / "plain"), "--jobs", "2")
    assert plain.returncode == 0, plain.stderr
    out = tmp_path / "slurm"
    grid = [*common, "--models", f"{spec('SlowAE')},{spec('CrashAE')}", "--out", str(out), "--executor", "slurm",
            "--slurm", f"partition={slurm_cluster.partition}"]  # fmt: skip
    submitted = aebench(*grid, "--detach", env=slurm_cluster.env_with_slow_requeue(tmp_path / "bin"))
    assert submitted.returncode == 0, submitted.stderr
    entries = executors.load_grid(executors.latest_grids(out)[0])["jobs"]
    assert len({e["slurm_job_id"].split("_")[0] for e in entries}) == 1 and len(entries) == 4  # one job array
    folder = out / "toy"
    deadline = time.monotonic() + 120
    while not (folder / "checkpoints" / "slow-ae-long-seed0.pt").exists():
        assert time.monotonic() < deadline, "the SLURM job never wrote its checkpoint"
        time.sleep(0.2)
    # What SLURM sends signal_delay_s before the time limit, to the job's process (from its running marker). Not
    # `scancel --signal`: it retries while the job is in transition, and a retry can hit the requeued job's start.
    marker = json.loads((folder / "running" / "slow-ae-long-seed0.json").read_text())
    os.kill(marker["pid"], signal.SIGUSR2)
    first = aebench("status", str(out), "--watch", env=slurm_cluster.env, timeout=300)
    assert first.returncode == 1, first.stdout
    assert first.stdout.rstrip().splitlines()[-5].endswith("2 done, 2 failed"), first.stdout
    crash = json.loads((folder / "records" / "crash-ae-long-seed0.json").read_text())
    assert crash["status"] == "failed" and "shape mismatch" in crash["reason"] and crash["executor"]["slurm_job_id"]
    for seed in (0, 1):
        ours = json.loads((folder / "records" / f"slow-ae-long-seed{seed}.json").read_text())
        theirs = json.loads((tmp_path / "plain" / "toy" / "records" / f"slow-ae-long-seed{seed}.json").read_text())
        assert ours["metrics"] == theirs["metrics"] and ours["final_losses"] == theirs["final_losses"], seed
        assert ours["resumed"] is (seed == 0) and (int(ours["executor"].get("slurm_restarts", 0)) > 0) is (seed == 0)
    assert "| slow-ae | 2 |" in (folder / "leaderboard.md").read_text()  # the last job rebuilt it
    (requeued,) = [e for e in entries if e["job"]["seed"] == 0 and "SlowAE" in e["job"]["model"]]
    assert "ended by the requeue it asked for" in Path(requeued["log"]).with_suffix(".err").read_text()

    again = aebench(*grid, env=slurm_cluster.env)
    assert again.returncode == 1, again.stderr  # the crash fails again; nothing of slow-ae trains a second time
    assert again.stderr.count("slow-ae seed") == 2 and again.stderr.count(": reused") == 2, again.stderr


@pytest.mark.slow
def test_a_cancelled_slurm_job_resumes_from_its_checkpoint_when_the_grid_runs_again(slurm_cluster, tmp_path):
    """`scancel` after the first checkpoint kills the job mid-training; the same command again submits the run
    anew, and it resumes from the checkpoint to the record of an uninterrupted run."""
    common = ["run", "--task", spec("ToyTask"), "--models", spec("PatientAE"), "--budget", "long", "--seeds", "0",
              "--cache-dir", str(tmp_path / "cache"), "--no-progress"]  # fmt: skip
    out = tmp_path / "slurm"
    grid = [*common, "--out", str(out), "--executor", "slurm", "--slurm", f"partition={slurm_cluster.partition}"]
    submitted = aebench(*grid, "--detach", env=slurm_cluster.env)
    assert submitted.returncode == 0, submitted.stderr
    (entry,) = executors.load_grid(executors.latest_grids(out)[0])["jobs"]
    folder = out / "toy"
    checkpoint, record = (
        folder / "checkpoints" / "patient-ae-long-seed0.pt",
        folder / "records" / "patient-ae-long-seed0.json",
    )
    slurm_cluster.wait_until(checkpoint.exists, timeout=120, what="checkpoint of the SLURM job")
    slurm_cluster.run("scancel", entry["slurm_job_id"])
    slurm_cluster.wait_until(lambda: not slurm_cluster.job_ids(), timeout=60, what="end of the cancelled job")
    assert checkpoint.exists() and not record.exists()  # killed mid-training: its checkpoint left, no record
    # The uninterrupted run, in-process, while `status --watch` waits out the requeue grace.
    plain = subprocess.Popen(
        [sys.executable, "-m", "aebench", *common, "--out", str(tmp_path / "plain")], stdout=subprocess.DEVNULL
    )
    status = aebench("status", str(out), "--watch", env=slurm_cluster.env, timeout=120)
    assert status.returncode == 1 and "0 done, 0 failed, 1 lost" in status.stdout, status.stdout
    assert "SLURM says CANCELLED and no record was written" in status.stdout, status.stdout
    assert plain.wait(timeout=300) == 0
    again = aebench(*grid, env=slurm_cluster.env)
    assert again.returncode == 0, again.stderr
    ours = json.loads(record.read_text())
    theirs = json.loads((tmp_path / "plain" / "toy" / "records" / record.name).read_text())
    assert ours["resumed"] and ours["metrics"] == theirs["metrics"] and ours["final_losses"] == theirs["final_losses"]
    assert ours["loss_history"] == theirs["loss_history"]


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


def test_only_a_requeue_that_ends_its_own_scontrol_exits_as_requeued(capsys):
    """The wrapped requeue handler (aebench.slurm.survive_own_requeue): `scontrol requeue` killed by a signal (the
    requeue it asked for) exits as submitit's own requeue does; a requeue that scontrol refused, or any other error,
    still fails the run with its cause."""
    from aebench import slurm

    requeue_signal = slurm.submitit.JobEnvironment._usr_sig()
    before = signal.getsignal(requeue_signal)
    try:
        for error, raised in (
            (subprocess.CalledProcessError(-signal.SIGTERM, ["scontrol", "requeue", "7_0"]), SystemExit),
            (subprocess.CalledProcessError(1, ["scontrol", "requeue", "7_0"]), subprocess.CalledProcessError),
            (subprocess.CalledProcessError(-signal.SIGTERM, ["sacct", "-j", "7_0"]), subprocess.CalledProcessError),
            (RuntimeError("checkpoint failed"), RuntimeError),
        ):

            def submitit_handler(signum, frame, error=error):
                raise error

            signal.signal(requeue_signal, submitit_handler)
            slurm.survive_own_requeue()
            with pytest.raises(raised) as caught:
                signal.getsignal(requeue_signal)(requeue_signal, None)
            assert (raised is SystemExit) is ("exiting as requeued" in capsys.readouterr().err)
            assert raised is SystemExit or caught.value is error
    finally:
        signal.signal(requeue_signal, before)
