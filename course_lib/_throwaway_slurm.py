"""A throw-away single-node Slurm on 127.0.0.1, for tests and benches that submit engines.

:class:`ThrowawaySlurm` writes a ``slurm.conf`` into a folder of its own (every
pid, log, state and spool path inside it), starts ``munged`` (as the munge
user: as root it refuses), ``slurmctld`` and ``slurmd``, waits until the node
is idle, and stops all three by PID at the end, after cancelling every job.
Nothing outside the folder is touched but ``/run/munge`` (munged's socket,
created by the Debian package's own layout).

Slurm's client commands read ``SLURM_CONF``: :meth:`ThrowawaySlurm.environment`
gives it, and tests set it with ``monkeypatch`` so that only they see it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from course_lib import _processes

DAEMONS = ("munged", "slurmctld", "slurmd")
#: CPUs the node declares: more than the 2 cores here, so that an engine job and
#: the replacement job of a test fit at once.
NODE_CPUS = 4


def find_slurm():
    """``(True, "")`` when a throw-away Slurm can run here, else ``(False, why)``."""
    if os.geteuid() != 0:
        return False, "not root: slurmd and munged must run as root and as munge"
    missing = [
        name for name in (*DAEMONS, "sbatch", "squeue", "scancel", "sinfo") if _binary(name) is None
    ]
    if missing:
        return False, f"{', '.join(missing)} not on PATH"
    try:
        import pwd

        pwd.getpwnam("munge")
    except KeyError:
        return False, "no munge user (install the munge package)"
    return True, ""


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _binary(name):
    """The command ``name`` on PATH, else None (ipyparallel's launcher looks there too)."""
    return shutil.which(name)


class ThrowawaySlurm:
    """munged, slurmctld and slurmd in ``folder``, node ``localhost`` on 127.0.0.1.

    Attributes
    ----------
    conf : Path
        The ``slurm.conf``.
    partition : str
        The only partition (the default one), with :data:`NODE_CPUS` CPUs.
    pids : dict
        ``{daemon: pid}`` once started.
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.conf = self.folder / "slurm.conf"
        self.partition = "debug"
        # munged runs as the munge user, who cannot enter a root-only test folder:
        # its socket, key seed and log live in a folder of their own.
        self.munge_dir = Path(tempfile.mkdtemp(prefix="course-munge-"))
        self.pids = {}
        self.startup_seconds = None

    def environment(self):
        """What Slurm's client commands need in their environment."""
        return {"SLURM_CONF": str(self.conf)}

    def run(self, *command, check=True, timeout=30):
        """A Slurm client command run against this Slurm; its stdout."""
        done = subprocess.run(
            command,
            env={**os.environ, **self.environment()},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")
        return done.stdout

    def _write(self):
        f = self.folder
        for sub in ("state", "spool"):
            (f / sub).mkdir(parents=True, exist_ok=True)
        self.munge_dir.chmod(0o755)
        shutil.chown(self.munge_dir, "munge", "munge")
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=course",
                    "SlurmctldHost=localhost(127.0.0.1)",
                    "SlurmUser=root",
                    "AuthType=auth/munge",
                    f"AuthInfo=socket={self.munge_dir / 'munge.socket'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "AccountingStorageType=accounting_storage/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_CPU",
                    "MailProg=/bin/true",
                    "ReturnToService=2",
                    # Trust the CPUs declared below over the cores slurmd counts.
                    "SlurmdParameters=config_overrides",
                    "MpiDefault=none",
                    f"SlurmctldPort={_free_port()}",
                    f"SlurmdPort={_free_port()}",
                    f"SlurmctldPidFile={f / 'slurmctld.pid'}",
                    f"SlurmdPidFile={f / 'slurmd.pid'}",
                    f"SlurmctldLogFile={f / 'slurmctld.log'}",
                    f"SlurmdLogFile={f / 'slurmd.log'}",
                    f"StateSaveLocation={f / 'state'}",
                    f"SlurmdSpoolDir={f / 'spool'}",
                    # Start an element as soon as a CPU is free: the main scheduling loop
                    # every second, not every 60 s, and no minimum gap between two runs
                    # of it (measured: 2 s between one element's end and the next one's
                    # start with the defaults, 1 s with these; grading pays it once per
                    # element, see course_lib/grading/slurm.py).
                    "SchedulerParameters=sched_interval=1,sched_min_interval=0,batch_sched_delay=0",
                    # A loopback cluster answers in milliseconds: fail fast, not in 10 s.
                    "MessageTimeout=5",
                    "KillWait=2",
                    "InactiveLimit=0",
                    "MinJobAge=2",
                    f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={NODE_CPUS} State=UNKNOWN",
                    f"PartitionName={self.partition} Nodes=localhost Default=YES "
                    "MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )

    def _read_pid(self, path):
        with contextlib.suppress(OSError, ValueError, IndexError):  # not written yet
            return int(Path(path).read_text().split()[0])
        return None

    def start(self, timeout=60):
        """Start the three daemons and wait until the node is idle."""
        started = time.monotonic()
        self._write()
        f = self.folder
        m = self.munge_dir
        try:
            subprocess.run(
                [
                    "runuser",
                    "-u",
                    "munge",
                    "--",
                    _binary("munged"),
                    f"--socket={m / 'munge.socket'}",
                    f"--pid-file={m / 'munged.pid'}",
                    f"--log-file={m / 'munged.log'}",
                    f"--seed-file={m / 'munged.seed'}",
                ],
                check=True,
                capture_output=True,
                timeout=30,
            )
            self.pids["munged"] = self._read_pid(m / "munged.pid")
            env = {**os.environ, **self.environment()}
            subprocess.run(
                [_binary("slurmctld"), "-f", str(self.conf)],
                env=env,
                check=True,
                capture_output=True,
                timeout=30,
            )
            subprocess.run(
                [_binary("slurmd"), "-f", str(self.conf), "-N", "localhost"],
                env=env,
                check=True,
                capture_output=True,
                timeout=30,
            )
            deadline = time.monotonic() + timeout
            while True:
                for daemon in ("slurmctld", "slurmd"):
                    if self.pids.get(daemon) is None:
                        self.pids[daemon] = self._read_pid(f / f"{daemon}.pid")
                states = self.run("sinfo", "-h", "-o", "%T", check=False).split()
                if states == ["idle"] and all(self.pids.values()):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"Slurm's node is {states} after {timeout} s, not idle; "
                        f"slurmctld log:\n{self._log('slurmctld')}\nslurmd log:\n"
                        f"{self._log('slurmd')}"
                    )
                time.sleep(0.1)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _log(self, daemon):
        path = self.folder / f"{daemon}.log"
        return path.read_text()[-2000:] if path.exists() else ""

    def jobs(self):
        """Ids of the jobs Slurm still lists (running, pending or completing)."""
        return self.run("squeue", "-h", "-o", "%i").split()

    def wait_no_jobs(self, timeout=30):
        """Wait until no job is listed (a cancelled job stays 'completing' a few seconds)."""
        deadline = time.monotonic() + timeout
        while self.jobs() and time.monotonic() < deadline:
            time.sleep(0.2)
        return self.jobs()

    def processes(self):
        """The daemons and everything they started (job steps, their tasks), alive.

        Found by what is ours alone: munged by its PID file, slurmctld and slurmd
        by this ``slurm.conf`` on their command line, and the job step daemons
        (``slurmstepd`` daemonizes: its parent is PID 1) by their working folder,
        which slurmd gives them: this folder.
        """
        roots = [pid for pid in (self.pids.get("munged"),) if pid]
        for proc in psutil.process_iter(["name", "cmdline", "cwd"]):
            info = proc.info
            if info["name"] not in ("slurmctld", "slurmd", "slurmstepd", "slurmscriptd"):
                continue
            if str(self.conf) in (info["cmdline"] or []) or info["cwd"] == str(self.folder):
                roots.append(proc.pid)
        found = {}
        for pid in roots:
            for proc in _processes.process_tree(pid):
                found[proc.pid] = proc
        return list(found.values())

    def stop(self, grace=10.0):
        """Cancel every job, stop the daemons by PID (SIGKILL what stays); remove the folder.

        Returns the PIDs that were running (all gone when this returns).
        """
        with contextlib.suppress(Exception):
            if self.jobs():
                self.run("scancel", "--user", "root", check=False)
                self.wait_no_jobs(timeout=grace)
        stopped = _processes.stop_or_raise(self.processes(), "Slurm", grace)
        shutil.rmtree(self.folder, ignore_errors=True)
        shutil.rmtree(self.munge_dir, ignore_errors=True)
        return stopped

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()
