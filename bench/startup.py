"""How long students wait for 2 engines: course_lib against ipyparallel defaults, per launcher.

For each launcher (local processes, SSH, MPI, Slurm) both ways start a
controller and N engines and stop when every engine has answered one task;
the stop time is reported apart. Runs alternate so that machine noise hits
both alike. SSH runs against a throw-away sshd on 127.0.0.1 and Slurm against
a throw-away single-node Slurm (both from ``course_lib._throwaway_*``, as root); a launcher
this machine cannot run is skipped with the reason. The last line is the
headline ratio for local clusters, the one students wait for in every lesson.

    python bench/startup.py --engines 2 --repeat 3 --launchers local ssh mpi slurm
"""

import argparse
import contextlib
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ipyparallel
from traitlets.config import Config

from course_lib._throwaway_slurm import ThrowawaySlurm, find_slurm
from course_lib._throwaway_sshd import ThrowawaySSHD, find_sshd
from course_lib.cluster import course_cluster, find_mpiexec, launcher_available, stop_cluster


def _answer():
    return 1


def _ssh_config(server, folder, n_engines):
    config = Config()
    launcher = config.SSHEngineSetLauncher
    launcher.engines = {f"{server.user}@127.0.0.1": n_engines}
    launcher.ssh_args = ["-p", str(server.port), *server.options]
    launcher.scp_args = ["-P", str(server.port), *server.options]
    launcher.remote_python = sys.executable
    launcher.remote_profile_dir = str(Path(folder) / "remote-profile")
    launcher.environment = {"IPYTHONDIR": str(Path(folder) / "ipython")}
    return config


def _defaults_config(launcher, n_engines, folder, server):
    """ipyparallel's defaults, plus only what the launcher cannot run without here."""
    if launcher == "ssh":
        return {"engines": "ssh", "controller_ip": "127.0.0.1"}, _ssh_config(
            server, folder, n_engines
        )
    config = Config()
    if launcher == "mpi":
        config.MPIEngineSetLauncher.mpi_cmd = [find_mpiexec()]
        return {"engines": "mpi"}, config
    if launcher == "slurm":
        config.SlurmEngineSetLauncher.timelimit = "10"
        config.SlurmEngineSetLauncher.batch_file_name = str(Path(folder) / "engines.sbatch")
        return {"engines": "slurm", "controller_ip": "127.0.0.1"}, config
    return {}, config


def _wait_no_jobs(timeout=30):
    if os.environ.get("SLURM_CONF") is None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout
        if not listed.strip():
            return
        time.sleep(0.2)


def time_defaults(launcher, n_engines, server=None):
    """ipyparallel's defaults, as its documentation starts a cluster."""
    with tempfile.TemporaryDirectory() as folder:
        kwargs, config = _defaults_config(launcher, n_engines, folder, server)
        start = time.perf_counter()
        cluster = ipyparallel.Cluster(
            n=n_engines,
            profile_dir=folder,
            log_level=logging.ERROR,
            engine_timeout=300,
            config=config,
            **kwargs,
        )
        client = cluster.start_and_connect_sync()
        try:
            client[:].apply_sync(_answer)
            up = time.perf_counter() - start
        finally:
            stopping = time.perf_counter()
            stop_cluster(cluster, client)
            _wait_no_jobs()
            down = time.perf_counter() - stopping
    return up, down


def time_course(launcher, n_engines, server=None):
    with tempfile.TemporaryDirectory() as folder:
        config = _ssh_config(server, folder, n_engines) if launcher == "ssh" else None
        start = time.perf_counter()
        cluster = course_cluster(
            n_engines, engines=launcher, config=config, timeout=300, progress=False
        )
        client = cluster.start()
        try:
            client[:].apply_sync(_answer)
            up = time.perf_counter() - start
        finally:
            stopping = time.perf_counter()
            cluster.stop()
            down = time.perf_counter() - stopping
    return up, down


@contextlib.contextmanager
def _services(launchers, folder):
    """Start a throw-away sshd and Slurm where asked and possible; yield skip reasons."""
    skipped, server, slurm = {}, None, None
    try:
        if "ssh" in launchers:
            path, why = find_sshd(install=False)
            if path is None:
                skipped["ssh"] = why
            else:
                server = ThrowawaySSHD(Path(folder) / "sshd", path).start()
        if "slurm" in launchers:
            ok, why = find_slurm()
            if not ok:
                skipped["slurm"] = why
            else:
                slurm = ThrowawaySlurm(Path(folder) / "slurm").start()
                os.environ.update(slurm.environment())
        for launcher in launchers:
            if launcher not in skipped and launcher != "ssh":
                ok, why = launcher_available(launcher)
                if not ok:
                    skipped[launcher] = why
        yield skipped, server
    finally:
        if slurm is not None:
            slurm.stop()
            os.environ.pop("SLURM_CONF", None)
        if server is not None:
            server.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--launchers",
        nargs="+",
        default=["local", "ssh", "mpi", "slurm"],
        choices=["local", "ssh", "mpi", "slurm"],
    )
    args = parser.parse_args()

    times = {}
    with (
        tempfile.TemporaryDirectory() as folder,
        _services(args.launchers, folder) as (
            skipped,
            server,
        ),
    ):
        for launcher in args.launchers:
            if launcher in skipped:
                print(f"{launcher}: skipped, {skipped[launcher]}")
                continue
            runs = times[launcher] = {"ipyparallel defaults": [], "course_lib": []}
            for _ in range(args.repeat):
                runs["ipyparallel defaults"].append(time_defaults(launcher, args.engines, server))
                runs["course_lib"].append(time_course(launcher, args.engines, server))

    print(f"{args.engines} engines, {args.repeat} runs each, median seconds")
    print(f"{'launcher':<10}{'way':<24}{'start to all answering':>24}{'stop':>8}{'ratio':>8}")
    medians = {}
    for launcher, runs in times.items():
        for way, results in runs.items():
            up = statistics.median(run[0] for run in results)
            down = statistics.median(run[1] for run in results)
            medians[launcher, way] = up
            ratio = up / medians[launcher, "ipyparallel defaults"]
            print(f"{launcher:<10}{way:<24}{up:>24.2f}{down:>8.2f}{ratio:>8.2f}")
    if "local" in times:
        course, defaults = medians["local", "course_lib"], medians["local", "ipyparallel defaults"]
        print(
            f"startup course/defaults = {course / defaults:.2f} "
            f"({course:.2f} s vs {defaults:.2f} s, {args.engines} engines)"
        )


if __name__ == "__main__":
    main()
