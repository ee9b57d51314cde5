"""Start JupyterLab for the course: loopback only, a fresh token, lessons open.

``make lab`` runs ``python -m course_lib.lab``. It prints the URL with its token
before JupyterLab starts, then hands the process over to JupyterLab (Ctrl-C
stops it).
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import sys
from pathlib import Path

__all__ = ["free_port", "lab_command"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port(host="127.0.0.1", preferred=8888):
    """``preferred`` if nothing listens there, else a free port chosen by the OS.

    Examples
    --------
    >>> 0 < free_port() < 65536
    True
    """
    for port in (preferred, 0):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise OSError(f"no free TCP port on {host}")


def lab_command(host, port, token, root_dir=REPO_ROOT):
    """The ``jupyter lab`` command line that ``make lab`` runs.

    The server's root is the repository (so the instructor's formgrader finds
    the course), and the browser opens on ``lessons/``.
    """
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        f"--ServerApp.ip={host}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root_dir}",
        f"--IdentityProvider.token={token}",
        "--LabApp.default_url=/lab/tree/lessons",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    return command


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ip", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8888)
    args = parser.parse_args(argv)
    port = free_port(args.ip, args.port)
    token = os.environ.get("COURSE_LAB_TOKEN") or secrets.token_hex(24)
    print(f"\n  Open the course at: http://{args.ip}:{port}/lab/tree/lessons?token={token}\n")
    sys.stdout.flush()
    command = lab_command(args.ip, port, token)
    # Tools that JupyterLab and nbgrader's formgrader start by name (jupyter,
    # ipcluster) must be this environment's, as if it were activated.
    bin_dir = os.path.dirname(sys.executable)
    os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
