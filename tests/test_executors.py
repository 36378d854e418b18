"""Run identity and the local executor: finished identical runs are reused, anything else trains again; jobs run
in parallel processes give the records of the in-process runner, and a dying job never stops the grid."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import aebench
from aebench import executors
from aebench.cli import main
from aebench.registry import tasks
from aebench.runner import Job, job_identity, load_data, run_job
from toy import spec

TOY = spec("ToyTask")


def run(out: Path, *args: str, models: str = "ToyAE") -> int:
    return main(["run", "--task", TOY, "--out", str(out), "--cache-dir", str(out.parent / "cache"), "--no-progress",
                 "--models", ",".join(spec(m) for m in models.split(",")), *args])  # fmt: skip


def record(out: Path, name: str = "toy-ae-smoke-seed0") -> dict:
    return json.loads((out / "toy" / "records" / f"{name}.json").read_text())


def metrics(folder: Path) -> dict:
    """{record file: {metric: value}} of the model records of a task folder."""
    return {
        path.name: {k: v["value"] for k, v in json.loads(path.read_text())["metrics"].items()}
        for path in sorted((folder / "records").glob("*.json"))
        if not path.name.startswith("reference")
    }


# --- identity ------------------------------------------------------------------------------------------------


def identity(tmp_path, **changes) -> str:
    job = Job(task=TOY, model=spec("ToyAE"), cache_dir=str(tmp_path), **changes)
    return job_identity(job)["hash"]


def test_the_identity_changes_with_every_part_and_only_with_those(tmp_path, monkeypatch):
    base = identity(tmp_path)
    assert identity(tmp_path) == base  # a pure function of the job
    changed = {
        "seed": identity(tmp_path, seed=1),
        "budget": identity(tmp_path, budget="per-model"),
        "config": identity(tmp_path, model_args={"lr": "0.05"}),
        "model": Job(task=TOY, model=spec("NaNAE"), cache_dir=str(tmp_path)),
    }
    changed["model"] = job_identity(changed["model"])["hash"]
    task_cls = tasks.get(TOY)  # the class the runner loads from the file (another module object than `toy`'s)
    monkeypatch.setattr(task_cls, "version", "2")
    changed["task version"] = identity(tmp_path)
    monkeypatch.setattr(task_cls, "version", "1")
    monkeypatch.setattr(aebench, "__version__", "9.9.9")
    changed["aebench version"] = identity(tmp_path)
    monkeypatch.undo()
    data = load_data(Job(task=TOY, model=spec("ToyAE"), cache_dir=str(tmp_path)))
    original = data.train["x"].clone()
    try:  # the same job on data that differs in one number
        data.train["x"][0, 0] += 1e-3
        data._hash = None
        changed["data"] = identity(tmp_path)
    finally:
        data.train["x"].copy_(original)
        data._hash = None
    assert identity(tmp_path) == base
    assert len(set(changed.values()) | {base}) == len(changed) + 1, changed
    # where and how it runs is not what it computes
    where = [{"device": "cpu"}, {"cpu_threads": 2}, {"label": "mine"}, {"out_dir": str(tmp_path / "elsewhere")},
             {"executor": {"name": "local"}}, {"amp": False}, {"compile": True}]  # fmt: skip
    assert {identity(tmp_path, **changes) for changes in where} == {base}


def test_a_finished_identical_run_is_reused_and_force_trains_again(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(out) == 0
    first = record(out)
    assert first["identity"]["hash"] and first["identity"]["parts"]["data"]
    capsys.readouterr()
    assert run(out) == 0
    assert "toy-ae seed 0: reused" in capsys.readouterr().err
    assert record(out) == first  # untouched
    path = out / "toy" / "records" / "toy-ae-smoke-seed0.json"
    path.write_text(json.dumps({**first, "mark": "the stored record"}))  # (a fast run may repeat wall time and clock)
    assert run(out, "--force") == 0
    assert "reused" not in capsys.readouterr().err
    again = record(out)
    assert "mark" not in again and again["created"] >= first["created"]  # written anew
    assert again["metrics"] == first["metrics"]  # the same run, trained again


def test_a_changed_config_or_a_failed_record_trains_again(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(out, "--budget", "per-model") == 0
    path = out / "toy" / "records" / "toy-ae-per-model-seed0.json"
    text = json.loads(path.read_text())
    text["status"], text["reason"] = "failed", "a failure to retry"
    path.write_text(json.dumps(text))
    capsys.readouterr()
    assert run(out, "--budget", "per-model") == 0
    assert "reused" not in capsys.readouterr().err
    assert record(out, "toy-ae-per-model-seed0")["status"] == "ok"
    assert run(out, "--budget", "per-model", "--model-args", "toy-ae.lr=0.05") == 0
    assert "reused" not in capsys.readouterr().err


def test_a_record_from_another_folder_is_reused_with_its_picture(tmp_path, capsys):
    done, out = tmp_path / "done", tmp_path / "out"
    assert run(done, "--seeds", "0,1") == 0
    picture = done / "toy" / "samples" / "toy-ae-smoke-seed0.png"  # the toy task draws none: stand in for one
    picture.parent.mkdir()
    picture.write_bytes(b"\x89PNG a picture")
    capsys.readouterr()
    assert run(out, "--seeds", "0,1,2", "--reuse", str(done), "--label", "mine") == 0
    err = capsys.readouterr().err
    assert err.count("reused") == 2 and "mine seed 2: ok" in err
    copy, original = record(out, "mine-smoke-seed0"), record(done, "toy-ae-smoke-seed0")
    assert copy["metrics"] == original["metrics"] and copy["identity"] == original["identity"]
    assert copy["model"]["label"] == "mine" and copy["reused_from"].endswith("toy-ae-smoke-seed0.json")
    assert (out / "toy" / "samples" / "mine-smoke-seed0.png").read_bytes() == picture.read_bytes()
    assert run(out, "--reuse", str(tmp_path / "nowhere")) == 2


def test_records_before_identities_are_never_reused(tmp_path, capsys):
    out = tmp_path / "out"
    assert run(out) == 0
    path = out / "toy" / "records" / "toy-ae-smoke-seed0.json"
    old = json.loads(path.read_text())
    del old["identity"]
    path.write_text(json.dumps(old))
    capsys.readouterr()
    assert run(out) == 0
    assert "reused" not in capsys.readouterr().err and "identity" in record(out)


# --- the local executor --------------------------------------------------------------------------------------


def test_bad_executor_options_are_one_line_errors(tmp_path, capsys):
    for args in (["--jobs", "0"], ["--jobs", "2", "--executor", "in-process"], ["--detach"],
                 ["--slurm", "partition=x"], ["--executor", "slurm", "--slurm", "partiton=x"]):  # fmt: skip
        assert run(tmp_path / "out", *args) == 2, args
        err = capsys.readouterr().err.strip()
        assert err.startswith("aebench: error:") and "\n" not in err, err
    assert not (tmp_path / "out" / "toy" / "records").exists()


@pytest.mark.slow
def test_local_parallel_jobs_give_the_in_process_records_and_a_dying_job_stops_nothing(tmp_path, capsys):
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    assert run(serial, "--seeds", "0,1,2") == 0
    assert run(parallel, "--seeds", "0,1,2", "--jobs", "2", models="ToyAE,DiesAE,CrashAE") == 1
    ours = metrics(parallel / "toy")
    assert {k: v for k, v in ours.items() if k.startswith("toy-ae")} == metrics(serial / "toy")
    assert sorted(ours) == [f"{m}-smoke-seed{s}.json" for m in ("crash-ae", "toy-ae") for s in range(3)]
    board = (parallel / "toy" / "leaderboard.md").read_text()
    assert "| toy-ae | 3 |" in board and "failed: RuntimeError" in board
    grid_file = executors.latest_grids(parallel)[0]
    grid = executors.load_grid(grid_file)
    states = dict(zip([(e["row"], e["job"]["seed"]) for e in grid["jobs"]], executors.states_of(grid)))
    assert {states[("dies-ae", s)][0] for s in range(3)} == {"lost"}
    assert {states[("crash-ae", s)][0] for s in range(3)} == {"failed"}
    assert {states[("toy-ae", s)][0] for s in range(3)} == {"done"}
    executor = record(parallel)["executor"]
    assert executor["name"] == "local" and executor["jobs"] == 2 and executor["threads"] >= 1
    assert not list((parallel / "toy" / "running").glob("*"))  # the dead jobs' markers too
    capsys.readouterr()
    assert main(["status", str(parallel)]) == 1
    shown = capsys.readouterr().out
    assert shown.count(" lost ") == 3 and "3 done, 3 failed, 3 lost" in shown


@pytest.mark.slow
def test_a_detached_grid_runs_on_after_the_command_and_status_follows_it(tmp_path):
    out = tmp_path / "out"
    # PatientAE sleeps 15 s a run: still running when `status` has started, however busy the machine (ToyAE's
    # 5 s runs ended first on a loaded 2-core machine)
    command = [sys.executable, "-m", "aebench", "run", "--task", TOY, "--models", spec("PatientAE"), "--seeds", "0,1",
               "--budget", "long", "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--jobs", "2",
               "--detach"]  # fmt: skip
    started = time.monotonic()
    submitted = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert submitted.returncode == 0, submitted.stderr
    assert "running in the background" in submitted.stderr
    status = [sys.executable, "-m", "aebench", "status", str(out)]
    first = subprocess.run(status, capture_output=True, text=True, timeout=60)
    assert first.returncode == 3 and ("queued" in first.stdout or "running" in first.stdout), first.stdout
    final = subprocess.run([*status, "--watch"], capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stdout
    assert final.stdout.rstrip().splitlines()[-3].endswith("2 done, 0 failed"), final.stdout
    assert (out / "toy" / "leaderboard.md").stat().st_mtime >= started - 1  # the last job rebuilt it
    assert "| patient-ae | 2 |" in (out / "toy" / "leaderboard.md").read_text()
    assert ">patient-ae</td>" in (out / "toy" / "report.html").read_text()  # and the report with it


def test_status_lists_unfinished_runs_and_is_a_one_line_error_without_any(tmp_path, capsys):
    assert main(["status", str(tmp_path)]) == 2
    assert "no grid or unfinished run found" in capsys.readouterr().err

    def stop_at_250(step, losses):
        if step == 250:
            raise KeyboardInterrupt

    stopped = Job(task=TOY, model=spec("ToyAE"), budget="long", out_dir=str(tmp_path), cache_dir=str(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        run_job(stopped, progress=False, on_step=stop_at_250)
    (stopped.checkpoint_path.parent / "toy-ae-smoke-seed1.pt").write_bytes(b"not a checkpoint")
    assert main(["status", str(tmp_path)]) == 0  # no grid: nothing queued, running or failed
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("toy: unfinished runs") and "--resume` continues each" in lines[0]
    assert lines[1].startswith("  toy-ae-long-seed0: step 200 of 3,000 (7 %), ")
    assert lines[1].endswith(" s ago") and " of training, saved " in lines[1]
    assert lines[2].startswith("  toy-ae-smoke-seed1: unreadable checkpoint (")
    assert len(lines) == 3


def test_reference_rows_are_computed_once_per_identity(tmp_path, monkeypatch, capsys):
    task_cls, calls = tasks.get(TOY), []
    original = task_cls.references
    monkeypatch.setattr(task_cls, "references", lambda self, *args: calls.append(1) or original(self, *args))
    out = tmp_path / "out"
    assert run(out) == 0 and run(out, "--seeds", "1") == 0
    assert len(calls) == 1  # the second run found the rows of the same data and budget
    path = out / "toy" / "records" / "reference-smoke-train-vs-test.json"
    assert json.loads(path.read_text())["identity"]["parts"]["kind"] == "reference"
    other = tmp_path / "other"  # a new results folder on the same cache: the rows are copied, not computed
    assert run(other) == 0 and len(calls) == 1
    assert (other / "toy" / "records" / path.name).read_text() == path.read_text()
    (shared,) = (tmp_path / "cache" / "references").iterdir()
    shared.write_text('[{"kind": "reference"}]')  # a damaged shared copy is computed again
    assert run(tmp_path / "third") == 0 and len(calls) == 2
    calls.clear()
    assert run(out, "--budget", "per-model") == 0 and len(calls) == 1  # another budget: its own rows
    monkeypatch.setattr(task_cls, "version", "2")
    assert run(out) == 0 and len(calls) == 2  # another task version: computed again
