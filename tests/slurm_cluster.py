"""A private one-node SLURM cluster (munged, slurmctld, slurmd) for tests that submit real jobs.

Everything lives in one temp folder: the munge key and socket, slurm.conf, state, spool, logs. The daemons run in
the foreground as this process's children with SLURM_CONF set, so they never read /etc/slurm, and listen on free
ports chosen at start. There is no slurmdbd: accounting is off, so `sacct` fails (see tests/test_slurm_cluster.py).
Install the packages with scripts/install-slurm.sh; without them the fixture skips.
"""

import contextlib
import ctypes
import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

_SBIN = os.pathsep.join(["/usr/sbin", "/sbin", "/usr/bin"])
PARTITION = "debug"
_NODE_FIELDS = ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore", "RealMemory")


def _which(cmd: str) -> str | None:
    """slurmctld, slurmd and munged live in /usr/sbin, which a non-login PATH may lack."""
    return shutil.which(cmd) or shutil.which(cmd, path=_SBIN)


def missing_commands() -> list[str]:
    return [c for c in ("munged", "slurmctld", "slurmd", "sbatch", "sinfo", "srun") if _which(c) is None]


def _free_ports(n: int) -> list[int]:
    """Distinct free TCP ports: all sockets stay bound until every port is known."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _node_line(node: str) -> str:
    """This host's CPUs, sockets, cores and memory as slurmd sees them (`slurmd -C`), under our node name."""
    out = subprocess.run([_which("slurmd"), "-C"], capture_output=True, text=True, timeout=30, check=True).stdout
    fields = out.splitlines()[0].split()[1:]  # drop NodeName=<host>
    keep = [f for f in fields if f.split("=")[0] in _NODE_FIELDS]
    return f"NodeName={node} NodeAddr=127.0.0.1 NodeHostname={node} {' '.join(keep)} State=UNKNOWN"


@dataclasses.dataclass
class SlurmCluster:
    root: Path
    conf: Path
    env: dict[str, str]  # what a client needs on top of os.environ
    partition: str
    node: str
    procs: dict[str, subprocess.Popen]
    marker: str  # in the daemons' environment, and so in every slurmstepd they spawn

    def run(self, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        """Runs a client command (sbatch, squeue, scontrol, ...) against this cluster."""
        cmd = [_which(args[0]) or args[0], *args[1:]]
        proc = subprocess.run(cmd, env={**os.environ, **self.env}, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        return proc

    def env_with_slow_requeue(self, folder: Path) -> dict[str, str]:
        """The client variables with a `scontrol` first on PATH that, after a `requeue`, waits instead of returning:
        the requeue it asked for then ends it, as happens on a loaded node (submitit's requeue handler runs
        `scontrol requeue` inside the job, and a job inherits the submitter's PATH)."""
        folder.mkdir(parents=True, exist_ok=True)
        wrapper = folder / "scontrol"
        wrapper.write_text(f'#!/bin/sh\n{_which("scontrol")} "$@" || exit $?\n[ "$1" = requeue ] && sleep 30\nexit 0\n')
        wrapper.chmod(0o755)
        return {**self.env, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}

    def logs(self) -> str:
        """The tail of each daemon's output: stdout/stderr (*.out: munged in the foreground logs there, and the
        slurm daemons' errors before their log opens) and the slurm logs."""
        parts = []
        for name in ("munged.out", "slurmctld.out", "slurmctld.log", "slurmd.out", "slurmd.log"):
            path = self.root / name
            if path.exists():
                lines = path.read_text(errors="replace").splitlines()[-30:]
                parts.append(f"--- {path} (last 30 lines) ---\n" + "\n".join(lines))
        return "\n".join(parts)

    def job_ids(self) -> list[str]:
        out = self.run("squeue", "--noheader", "--format=%i", check=False).stdout
        return out.split()

    def wait_until(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}) while waiting for {what}\n{self.logs()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} after {timeout:.0f} s\n{self.logs()}")
            time.sleep(0.2)

    def marked_pids(self) -> list[int]:
        """Processes whose environment has our marker: our daemons and the slurmstepd they spawned (found so, not by
        name, so that another cluster's daemons on this machine are never touched)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if self.marker.encode() in environ.split(b"\0"):
                found.append(int(entry.name))
        return found


def _write_conf(root: Path, node: str) -> Path:
    ctld_port, slurmd_port = _free_ports(2)
    munge_socket = root / "munge.socket"
    conf = root / "slurm.conf"
    conf.write_text(
        "\n".join(
            [
                "ClusterName=aebench-test",
                f"SlurmctldHost={node}(127.0.0.1)",
                f"SlurmctldPort={ctld_port}",
                f"SlurmdPort={slurmd_port}",
                "SlurmUser=root",
                "SlurmdUser=root",
                # cred_expire: a requeued job waits cred_expire + 1 s before it may start again (default 120 s).
                f"AuthType=auth/munge\nAuthInfo=socket={munge_socket},cred_expire=5",
                "CredType=cred/munge",
                "MpiDefault=none",
                "MailProg=/bin/true",  # slurmctld complains when mail is missing
                # No cgroups: containers rarely delegate them, and a test cluster needs no limits enforced.
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "JobCompType=jobcomp/none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_CPU",
                "SchedulerType=sched/builtin",
                "SchedulerParameters=sched_interval=1",  # a requeued job starts once eligible, not up to 60 s later
                "ReturnToService=2",
                "SlurmctldTimeout=30",
                "SlurmdTimeout=30",
                "MinJobAge=300",  # finished jobs stay visible to squeue/scontrol for a while
                "KillWait=5",
                f"StateSaveLocation={root / 'state'}",
                f"SlurmdSpoolDir={root / 'spool'}",
                f"SlurmctldPidFile={root / 'slurmctld.pid'}",
                f"SlurmdPidFile={root / 'slurmd.pid'}",
                f"SlurmctldLogFile={root / 'slurmctld.log'}",
                f"SlurmdLogFile={root / 'slurmd.log'}",
                "SlurmctldDebug=info",
                "SlurmdDebug=info",
                _node_line(node),
                f"PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP",
                "",
            ]
        )
    )
    return conf


def _die_with_parent() -> None:
    """In the daemon before exec: SIGTERM it when pytest dies (a killed pytest runs no teardown)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1


def _stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def _skip(reason: str) -> None:
    """Skip where SLURM cannot be had; fail where it must run (CI sets AEBENCH_REQUIRE_SLURM, see .ci/run)."""
    if os.environ.get("AEBENCH_REQUIRE_SLURM"):
        pytest.fail(f"AEBENCH_REQUIRE_SLURM is set but {reason}")
    pytest.skip(reason)


@contextlib.contextmanager
def start_cluster(root: Path, timeout: float = 60):
    """Starts munged, slurmctld and slurmd in `root`, yields a SlurmCluster, and stops exactly those at exit."""
    missing = missing_commands()
    if missing:
        _skip(f"SLURM not installed ({', '.join(missing)} missing): run scripts/install-slurm.sh as root")
    if os.geteuid() != 0:
        _skip("the private SLURM cluster runs its daemons as root (SlurmUser=root)")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o700)  # the munge key is private (munged would like its socket folder open to all: --force below)
    for sub in ("state", "spool"):
        (root / sub).mkdir(exist_ok=True)
    node = socket.gethostname().split(".")[0]
    key = root / "munged.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)
    conf = _write_conf(root, node)
    marker = f"AEBENCH_SLURM_CLUSTER={root}"
    daemon_env = {**os.environ, "SLURM_CONF": str(conf), marker.split("=")[0]: str(root)}
    cluster = SlurmCluster(root, conf, {"SLURM_CONF": str(conf)}, PARTITION, node, {}, marker)

    def spawn(name: str, cmd: list[str]) -> None:
        out = open(root / f"{name}.out", "wb")  # noqa: SIM115 - closed with the process below
        cluster.procs[name] = subprocess.Popen(
            cmd, env=daemon_env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
        )
        out.close()

    try:
        files = [f"--{kind}-file={root / ('munged.' + kind)}" for kind in ("key", "pid", "log", "seed")]
        # --force: munged refuses a socket folder that not every user may enter (ours is 0700)
        spawn("munged", [_which("munged"), "-F", "--force", f"--socket={root / 'munge.socket'}", *files])
        cluster.wait_until(lambda: (root / "munge.socket").exists(), timeout, "munge socket")
        spawn("slurmctld", [_which("slurmctld"), "-D", "-i", "-f", str(conf)])
        spawn("slurmd", [_which("slurmd"), "-D", "-N", node, "-f", str(conf)])

        def node_idle() -> bool:
            proc = cluster.run("sinfo", "--noheader", "--format=%t", "--nodes", node, check=False, timeout=10)
            return proc.returncode == 0 and proc.stdout.strip() == "idle"

        cluster.wait_until(node_idle, timeout, f"idle node {node} in sinfo")
        yield cluster
    finally:
        if "slurmctld" in cluster.procs and cluster.procs["slurmctld"].poll() is None:
            jobs = cluster.job_ids()
            if jobs:
                cluster.run("scancel", "--full", *jobs, check=False)
                with contextlib.suppress(TimeoutError, RuntimeError):
                    cluster.wait_until(lambda: not cluster.job_ids(), 15, "empty queue")
        for name in ("slurmd", "slurmctld", "munged"):
            if name in cluster.procs:
                _stop(cluster.procs[name])
        # A slurmstepd outlives slurmd by design; ours carry the marker. Give them a moment, then end them.
        deadline = time.monotonic() + 5
        while cluster.marked_pids() and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in cluster.marked_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """One private cluster for the session; tests point the SLURM clients at it with `monkeypatch.setenv`."""
    with start_cluster(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster
