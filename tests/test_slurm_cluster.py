"""Real jobs on the private one-node SLURM cluster (tests/slurm_cluster.py): sbatch, submitit jobs and job arrays,
a checkpointed job requeued after a signal, and state tracking without accounting (no slurmdbd: `sacct` fails)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from slurm_cluster import start_cluster

submitit = pytest.importorskip("submitit")


@pytest.fixture
def client(slurm_cluster, monkeypatch):
    """submitit runs sbatch/sacct/scancel with os.environ; the jobs import this module by name (PYTHONPATH)."""
    for name, value in slurm_cluster.env.items():
        monkeypatch.setenv(name, value)
    path = [str(Path(__file__).parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(path))
    return slurm_cluster


def executor(cluster, folder: Path) -> submitit.SlurmExecutor:
    ex = submitit.SlurmExecutor(folder=folder)
    # time is 10 min so that submitit's own USR2 (signal_delay_s=90 before the limit) never fires during a test
    ex.update_parameters(partition=cluster.partition, time=10, cpus_per_task=1, mem="256M")
    return ex


def result(job, timeout: float = 30):
    """job.result() waits forever for a job that never writes its result: bound the wait."""
    deadline = time.monotonic() + timeout
    while not job.done():
        assert time.monotonic() < deadline, f"{job} unfinished after {timeout} s:\n{job.stdout()}\n{job.stderr()}"
        time.sleep(0.2)
    return job.result()


def slurm_state(cluster, job_id: str) -> str:
    """What slurmctld says of a job (it forgets finished jobs after MinJobAge)."""
    out = cluster.run("scontrol", "show", "job", job_id).stdout
    return out.split("JobState=", 1)[1].split()[0]


def add(a: int, b: int) -> int:
    return a + b


class SleepsOnce(submitit.helpers.Checkpointable):
    """First run: writes the marker and sleeps until interrupted; the checkpointed copy (runs=1) then finishes."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker
        self.runs = 0

    def __call__(self, x: int) -> tuple[int, int, str]:
        self.runs += 1
        if self.runs == 1:
            self.marker.write_text(os.environ["SLURM_JOB_ID"])
            time.sleep(60)
        return x + 3, self.runs, os.environ.get("SLURM_RESTART_COUNT", "0")


def test_sbatch_wrap_writes_its_output(client, tmp_path):
    out = tmp_path / "hello.out"
    job_id = client.run("sbatch", "--parsable", "-o", str(out), "--wrap", "echo hello").stdout.strip()
    client.wait_until(lambda: job_id not in client.job_ids(), 30, f"job {job_id} to finish")
    assert out.read_text().strip() == "hello"
    assert slurm_state(client, job_id) == "COMPLETED"


def test_submitit_job_and_job_array(client, tmp_path):
    ex = executor(client, tmp_path)
    job = ex.submit(add, 2, 3)
    jobs = ex.map_array(add, [1, 2, 3], [10, 20, 30])  # one sbatch --array
    with ex.batch():  # the same, as a batch of submits
        batch = [ex.submit(add, i, i) for i in range(3)]
    assert result(job) == 5
    assert [result(j) for j in jobs] == [11, 22, 33]
    assert [result(j) for j in batch] == [0, 2, 4]
    assert len({j.job_id.split("_")[0] for j in jobs}) == 1 and jobs[0].job_id.endswith("_0")


def test_submitit_state_without_accounting(client, tmp_path, caplog):
    """submitit reads job state from `sacct`, which fails with accounting off: state stays UNKNOWN, and done() is
    true only once the result pickle exists. slurmctld still knows the state (squeue/scontrol, for MinJobAge)."""
    assert client.run("sacct", check=False).returncode != 0
    job = executor(client, tmp_path).submit(add, 1, 1)
    assert result(job) == 2
    assert job.watcher.get_state(job.job_id, mode="force") == "UNKNOWN"
    assert "Bypassing sacct error" in caplog.text
    # the result pickle is written before SLURM marks the job COMPLETED (the step is still ending)
    client.wait_until(lambda: slurm_state(client, job.job_id) == "COMPLETED", 10, "COMPLETED in scontrol")

    cancelled = executor(client, tmp_path).submit(time.sleep, 60)
    client.wait_until(lambda: slurm_state(client, cancelled.job_id) == "RUNNING", 30, "running job")
    cancelled.cancel()
    client.wait_until(lambda: cancelled.job_id not in client.job_ids(), 30, "cancelled job to leave the queue")
    assert not cancelled.done(force_check=True)  # gone from SLURM, yet submitit would wait for it forever
    assert slurm_state(client, cancelled.job_id) == "CANCELLED"


def test_checkpointable_job_is_requeued_and_finishes(client, tmp_path):
    marker = tmp_path / "first-run"
    job = executor(client, tmp_path).submit(SleepsOnce(marker), 2)
    client.wait_until(marker.exists, 30, "first run of the checkpointable job")
    job._interrupt(timeout=True)  # USR2, as SLURM sends it signal_delay_s before the time limit

    def restarted_and_done() -> bool:
        """submitit runs `scontrol requeue` inside the job, and the requeue it asks for may end it before it
        returns: the first run then leaves an error result, which the restart replaces (cf. submitit issue 1617;
        aebench's jobs exit as requeued instead: aebench.slurm.survive_own_requeue). So the result is read once
        SLURM says the restarted job has completed."""
        shown = client.run("scontrol", "show", "job", job.job_id).stdout
        return "Restarts=1" in shown and "JobState=COMPLETED" in shown

    client.wait_until(restarted_and_done, 40, "the restarted job to complete")
    assert result(job) == (5, 2, "1")  # the checkpoint (runs=1) ran once more, as restart 1
    assert marker.read_text() == job.job_id  # requeued under the same id


def test_teardown_leaves_none_of_its_processes(tmp_path, monkeypatch):
    with start_cluster(tmp_path / "cluster") as cluster:
        monkeypatch.setenv("SLURM_CONF", str(cluster.conf))
        cluster.run("sbatch", "-o", str(tmp_path / "sleep.out"), "--wrap", "sleep 60")  # cancelled at teardown
        cluster.wait_until(lambda: "R" in cluster.run("squeue", "-h", "-o", "%t").stdout, 30, "running job")
        pids = [p.pid for p in cluster.procs.values()]
        assert len(pids) == 3 and set(cluster.marked_pids()) - set(pids)  # the job's slurmstepd
    assert all(p.poll() is not None for p in cluster.procs.values())
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]
    assert not cluster.marked_pids()
