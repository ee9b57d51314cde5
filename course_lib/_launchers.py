"""The launchers :func:`course_lib.cluster.course_cluster` can start engines with: a registry.

Each launcher is keyed by **ipyparallel's own entry-point name** (the
``ipyparallel.engine_launchers`` group: ``Cluster(engines="ssh")`` takes the
same names) and carries its *preflight*: what it needs on this machine
(raising :class:`LauncherUnavailable`), what it refuses (``ValueError``), and
the course's defaults for it (ipyparallel config traits), all before anything
starts. :mod:`course_lib.cluster` asks the registry and never branches on a
name; adding a launcher is one class here and one line of :data:`REGISTRY`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import joblib
from traitlets.config import Config

#: Slurm time limit of the engines' job unless the config sets one: a
#: forgotten job (and its bill) ends then.
SLURM_TIMELIMIT = "01:00:00"

_LOOPBACK_NAMES = {"127.0.0.1", "localhost", "::1"}


class LauncherUnavailable(RuntimeError):
    """This machine lacks what a launcher needs (``mpiexec``, ``mpi4py``, Slurm).

    Not a mistake in the code that asked for it: a lesson's test raises it
    when the machine cannot run the exercise, and grading reports it as such.
    """


def _run_tool(command, timeout=30):
    """stdout of a short command line tool, or RuntimeError naming it and what it said."""
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise LauncherUnavailable(f"`{' '.join(command)}` failed: {error}") from error
    if done.returncode != 0:
        raise LauncherUnavailable(
            f"`{' '.join(command)}` exited with {done.returncode}: {done.stderr.strip()[-500:]}"
        )
    return done.stdout


def find_mpiexec():
    """The ``mpiexec`` to use: the course environment's own (PyPI ``mpich``), else PATH's.

    Returns
    -------
    str or None

    Examples
    --------
    >>> path = find_mpiexec()
    >>> path is None or path.endswith("mpiexec")
    True
    """
    own = os.path.join(sys.prefix, "bin", "mpiexec")
    if os.access(own, os.X_OK):
        return own
    return shutil.which("mpiexec")


def _is_open_mpi(mpiexec):
    with contextlib.suppress(RuntimeError):
        text = _run_tool([mpiexec, "--version"], timeout=20)
        return "Open MPI" in text or "OpenRTE" in text
    return False


def slurm_partition(partition=None):
    """Name, total CPUs and node addresses of a Slurm partition (default: Slurm's default).

    Parameters
    ----------
    partition : str, optional

    Returns
    -------
    dict
        ``{"name": str, "cpus": int, "addresses": list of str}``.

    Raises
    ------
    LauncherUnavailable
        If ``sinfo`` is missing or cannot reach the controller.
    ValueError
        If the partition does not exist.
    """
    if shutil.which("sinfo") is None:
        raise LauncherUnavailable("sinfo is not on PATH: is Slurm installed (slurm-client)?")
    try:
        names = _run_tool(["sinfo", "-h", "-o", "%P"]).split()
    except LauncherUnavailable as error:
        raise LauncherUnavailable(
            f"Slurm is not reachable ({error}). On a cluster, run this on a login node; "
            "with a Slurm of your own, set SLURM_CONF to its slurm.conf."
        ) from error
    default = next((name[:-1] for name in names if name.endswith("*")), None)
    known = [name.rstrip("*") for name in names]
    name = partition or default
    if name not in known:
        raise ValueError(
            f"Slurm partition {name!r} does not exist: choose one of {known} with "
            'config={"SlurmEngineSetLauncher": {"queue": ...}}.'
        )
    cpus, addresses = 0, []
    for line in _run_tool(["sinfo", "-h", "-N", "-p", name, "-o", "%o %C"]).splitlines():
        address, counts = line.split()
        addresses.append(address)
        cpus += int(counts.split("/")[-1])
    return {"name": name, "cpus": cpus, "addresses": addresses}


def _this_host():
    return {socket.gethostname(), socket.getfqdn(), *_LOOPBACK_NAMES}


def _host_of(target):
    """Host part of an SSH target such as ``alice@node3:2222``."""
    return target.rsplit("@", 1)[-1].split(":")[0]


def _address_for_engines_on(hosts):
    """127.0.0.1 when every engine host is this one, else this host's address towards them.

    That is the address of the interface that routes to the first other host
    (a UDP ``connect`` sends nothing), not ``gethostbyname(gethostname())``,
    which is 127.0.1.1 on many Linux systems.
    """
    others = [host for host in hosts if host not in _this_host()]
    if not others:
        return "127.0.0.1"
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((others[0], 9))
        return probe.getsockname()[0]
    return socket.gethostbyname(socket.gethostname())


def _mpi_hosts(mpi_args):
    """Hosts named by mpiexec's ``-hosts a,b`` or host file; empty when there is none."""
    hosts = []
    for flag, value in zip(mpi_args, mpi_args[1:], strict=False):
        if flag in ("-host", "-hosts", "--host"):
            hosts.extend(name.split(":")[0] for name in value.split(","))
        elif flag in ("-f", "-hostfile", "--hostfile", "-machinefile", "--machinefile"):
            with contextlib.suppress(OSError):
                for line in Path(value).read_text().splitlines():
                    words = line.split("#")[0].split()
                    if words:
                        hosts.append(words[0].split(":")[0])
    return hosts


class Launcher:
    """One way to start engines: ipyparallel's launcher of the same name, and its preflight.

    Attributes
    ----------
    name : str
        ipyparallel's entry-point name of the engine launcher.
    engines_on_this_host : bool
        Engines run here and read the connection file from the cluster's
        folder; elsewhere they get the connection in their environment.
    has_local_processes : bool
        The launcher's ``pid`` is a process on this host (False for SSH: its
        pid is the engine's on the remote host).
    """

    name = None
    engines_on_this_host = False
    has_local_processes = True

    def preflight(self, n_engines, config):
        """``(defaults, controller_ip)``, or an error saying what is missing or refused.

        Parameters
        ----------
        n_engines : int
        config : traitlets.config.Config
            The caller's ipyparallel settings (read, never changed).

        Returns
        -------
        defaults : traitlets.config.Config
            The course's defaults for this launcher; the caller's settings win.
        controller_ip : str
            127.0.0.1 when every engine runs on this host.
        """
        raise NotImplementedError

    def jobs(self, engine_set):
        """Batch job ids of an engine set (none for launchers without jobs)."""
        return ()

    def wait_jobs_gone(self, jobs, timeout):
        """Wait until the scheduler has let go of cancelled ``jobs``."""


class LocalLauncher(Launcher):
    """Engines as child processes of this one, on 127.0.0.1: needs nothing."""

    name = "local"
    engines_on_this_host = True

    def preflight(self, n_engines, config):
        return Config(), "127.0.0.1"


class SSHLauncher(Launcher):
    """Engines on the hosts of ``SSHEngineSetLauncher.engines``, over ``ssh``.

    Needs the ``ssh`` command and the hosts; runs the engines with this
    environment's Python unless ``remote_python`` says otherwise.
    """

    name = "ssh"
    has_local_processes = False

    def preflight(self, n_engines, config):
        if shutil.which("ssh") is None:
            raise LauncherUnavailable(
                "engines='ssh' needs the `ssh` command: install OpenSSH's client."
            )
        hosts = config.get("SSHEngineSetLauncher", {}).get("engines")
        if not hosts:
            raise ValueError(
                "engines='ssh' needs the hosts to start engines on: pass "
                'config={"SSHEngineSetLauncher": {"engines": {"node1": 2, "node2": 2}}}.'
            )
        defaults = Config()
        defaults.SSHEngineSetLauncher.remote_python = sys.executable
        return defaults, _address_for_engines_on(_host_of(host) for host in hosts)


class MPILauncher(Launcher):
    """Engines as the ranks of one ``mpiexec``: needs ``mpiexec`` and ``mpi4py``.

    The course's environment's own ``mpiexec`` (PyPI ``mpich``) comes first;
    Open MPI gets ``--allow-run-as-root`` as root and ``--oversubscribe`` for
    more ranks than CPUs, only where it needs them.
    """

    name = "mpi"

    def preflight(self, n_engines, config):
        launcher = config.get("MPIEngineSetLauncher", {})
        mpi_cmd = launcher.get("mpi_cmd") or [find_mpiexec() or "mpiexec"]
        if shutil.which(mpi_cmd[0]) is None:
            raise LauncherUnavailable(
                f"engines='mpi' needs mpiexec, and {mpi_cmd[0]!r} is not on PATH: install the "
                "course's `cluster` extra (pip install -e '.[cluster]': MPICH from PyPI), load "
                "your cluster's MPI (`module load openmpi`), or set "
                'config={"MPIEngineSetLauncher": {"mpi_cmd": ["/path/to/mpiexec"]}}.'
            )
        if importlib.util.find_spec("mpi4py") is None:
            raise LauncherUnavailable(
                "engines='mpi' needs mpi4py on the engines (ipyparallel's --mpi imports it): "
                "pip install -e '.[cluster]' or pip install mpi4py."
            )
        defaults = Config()
        defaults.MPIEngineSetLauncher.mpi_cmd = list(mpi_cmd)
        mpi_args = list(launcher.get("mpi_args", []))
        if _is_open_mpi(mpi_cmd[0]):
            # Open MPI refuses root, and more ranks than cores, unless told.
            if os.geteuid() == 0 and "--allow-run-as-root" not in mpi_args:
                mpi_args.append("--allow-run-as-root")
            if n_engines > max(1, int(joblib.cpu_count())) and "--oversubscribe" not in mpi_args:
                mpi_args.append("--oversubscribe")
        defaults.MPIEngineSetLauncher.mpi_args = mpi_args
        return defaults, _address_for_engines_on(_mpi_hosts(mpi_args))


class SlurmLauncher(Launcher):
    """Engines as one Slurm job (``sbatch``): needs Slurm's client and a partition big enough.

    Refuses more engines than the partition has CPUs (the job would never
    start); the job gets a time limit of :data:`SLURM_TIMELIMIT` unless the
    config sets one.
    """

    name = "slurm"

    def preflight(self, n_engines, config):
        missing = [tool for tool in ("sbatch", "scancel", "squeue") if shutil.which(tool) is None]
        if missing:
            raise LauncherUnavailable(
                f"engines='slurm' needs {', '.join(missing)} on PATH: run this on your "
                "cluster's login node, or install Slurm's client (apt-get install slurm-client)."
            )
        launcher = config.get("SlurmEngineSetLauncher", {})
        partition = slurm_partition(launcher.get("queue") or None)
        if n_engines > partition["cpus"]:
            raise ValueError(
                f"n_engines == {n_engines}, but Slurm partition {partition['name']!r} has "
                f"{partition['cpus']} CPUs in all, so the job would never start: ask for at "
                f"most {partition['cpus']} engines, or choose a larger partition with "
                'config={"SlurmEngineSetLauncher": {"queue": ...}}.'
            )
        defaults = Config()
        defaults.SlurmEngineSetLauncher.timelimit = SLURM_TIMELIMIT
        return defaults, _address_for_engines_on(partition["addresses"])

    def jobs(self, engine_set):
        job_id = getattr(engine_set, "job_id", "")
        return (str(job_id),) if job_id else ()

    def wait_jobs_gone(self, jobs, timeout):
        """Wait until ``squeue`` lists none of ``jobs`` (cancelled jobs stay 'completing')."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                listed = _run_tool(["squeue", "-h", "-o", "%i", "-j", ",".join(jobs)]).split()
            except LauncherUnavailable:
                return  # squeue refuses ids it no longer knows: they are gone
            if not set(listed) & set(jobs):
                return
            time.sleep(0.2)


#: Launcher name (ipyparallel's entry-point name) -> its preflight and defaults.
REGISTRY = {
    launcher.name: launcher
    for launcher in (LocalLauncher(), SSHLauncher(), MPILauncher(), SlurmLauncher())
}


def get_launcher(engines):
    """The registered launcher called ``engines``, or a ValueError naming the choices.

    Examples
    --------
    >>> get_launcher("mpi").name
    'mpi'
    >>> get_launcher("pbs")
    Traceback (most recent call last):
    ...
    ValueError: engines == 'pbs', must be one of ('local', 'ssh', 'mpi', 'slurm').
    """
    if not isinstance(engines, str) or engines not in REGISTRY:
        raise ValueError(f"engines == {engines!r}, must be one of {tuple(REGISTRY)}.")
    return REGISTRY[engines]
