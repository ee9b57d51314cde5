"""Start JupyterLab for the course: loopback only, a fresh token, lessons open.

``make lab`` runs ``python -m course_lib.lab`` (students) and ``make instructor``
runs ``python -m course_lib.lab --instructor``. Both serve the repository on
127.0.0.1 with a token and print the URL once the server answers (Ctrl-C stops
it). Their settings are files that :func:`write_lab_config` writes into a folder
put first on ``JUPYTER_CONFIG_PATH``:

- terminals run ``bash`` with the course's environment first on ``PATH`` (a login
  shell would reset it, and ``ipcluster``, ``nbgrader`` or ``python`` would be
  another interpreter's, or missing);
- no pop-up asking to fetch JupyterLab's news;
- for students only, nbgrader's instructor tools are off (the formgrader, "Create
  Assignment", the course list), as on Binder, which uses the same student folder
  (``binder/postBuild`` writes it, ``binder/start`` puts it on the path).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["free_port", "lab_command", "lab_config", "wait_until_answers", "write_lab_config"]

REPO_ROOT = Path(__file__).resolve().parent.parent
ROLES = ("student", "instructor")
#: nbgrader's parts for instructors only: server extensions and JupyterLab plugins.
INSTRUCTOR_SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.formgrader",
    "nbgrader.server_extensions.course_list",
)
INSTRUCTOR_LAB_PLUGINS = (
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:create-assignment",
    "@jupyter/nbgrader:course-list",
)
#: JupyterLab's pop-up asking whether it may fetch news and check for updates: off.
NO_NEWS = {
    "@jupyterlab/apputils-extension:notification": {
        "checkForUpdates": False,
        "fetchNews": "false",
    }
}
#: Seconds JupyterLab may take to answer (a busy 2-core machine needs about 15).
START_TIMEOUT = 180


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


def _check_role(role):
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, but got {role!r}.")
    return role


def lab_config(role, bin_dir, rc_file):
    """The settings files of the course's JupyterLab, as ``{relative path: content}``.

    Parameters
    ----------
    role : {"student", "instructor"}
        Students get no nbgrader instructor tools; instructors get the formgrader.
    bin_dir : str or path-like
        The folder of the course environment's commands, first on the terminals' PATH.
    rc_file : str or path-like
        Where the terminals' bash start-up file will be (see :func:`write_lab_config`).

    Returns
    -------
    dict
        JSON-able contents, keyed by their path relative to a Jupyter config folder,
        plus ``"bashrc"`` (text).

    Examples
    --------
    >>> files = lab_config("student", "/course/.venv/bin", "/cfg/bashrc")
    >>> files["labconfig/page_config.json"]["disabledExtensions"]["@jupyter/nbgrader:formgrader"]
    True
    >>> files["jupyter_server_config.json"]["ServerApp"]["terminado_settings"]["shell_command"][1:]
    ['--rcfile', '/cfg/bashrc', '-i']
    """
    role = _check_role(role)
    bash = shutil.which("bash") or "/bin/bash"
    server = {"terminado_settings": {"shell_command": [bash, "--rcfile", str(rc_file), "-i"]}}
    files = {
        "jupyter_server_config.json": {"ServerApp": server},
        "labconfig/default_setting_overrides.json": NO_NEWS,
    }
    if role == "student":
        server["jpserver_extensions"] = dict.fromkeys(INSTRUCTOR_SERVER_EXTENSIONS, False)
        files["labconfig/page_config.json"] = {
            "disabledExtensions": dict.fromkeys(INSTRUCTOR_LAB_PLUGINS, True)
        }
    # An interactive bash that is not a login shell: /etc/profile and the user's
    # files first (what a login shell would read), then the course's commands first.
    files["bashrc"] = (
        "# Terminals of the course's JupyterLab (written by course_lib.lab).\n"
        "[ -r /etc/profile ] && . /etc/profile\n"
        '[ -r "$HOME/.bashrc" ] && . "$HOME/.bashrc"\n'
        f'export PATH="{bin_dir}:$PATH"\n'
    )
    return files


def write_lab_config(folder, role="student", bin_dir=None):
    """Write the course's JupyterLab settings for ``role`` into ``folder``.

    Put ``folder`` first on ``JUPYTER_CONFIG_PATH`` before starting JupyterLab.
    Only the files of :func:`lab_config` are written; a role's folder holds
    nothing else, so writing it again is safe.

    Parameters
    ----------
    folder : str or path-like
        A folder of the course's own (created if missing).
    role : {"student", "instructor"}, default="student"
    bin_dir : str or path-like, optional
        Default: the folder of this Python's commands.

    Returns
    -------
    pathlib.Path
        ``folder``.

    Examples
    --------
    >>> import tempfile
    >>> folder = write_lab_config(tempfile.mkdtemp(), "instructor")
    >>> sorted(p.name for p in folder.rglob("*.json"))
    ['default_setting_overrides.json', 'jupyter_server_config.json']
    """
    role = _check_role(role)
    folder = Path(folder)
    bin_dir = Path(bin_dir) if bin_dir is not None else Path(sys.executable).parent
    rc_file = folder / "bashrc"
    for name, content in lab_config(role, bin_dir, rc_file).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        text = content if isinstance(content, str) else json.dumps(content, indent=2) + "\n"
        path.write_text(text)
    return folder


def lab_command(host, port, token, root_dir=REPO_ROOT):
    """The ``jupyter lab`` command line that ``make lab`` runs.

    The server's root is the repository (so the instructor's formgrader finds
    the course), and the browser opens on ``lessons/``.

    Examples
    --------
    >>> "--ServerApp.ip=127.0.0.1" in lab_command("127.0.0.1", 8888, "secret")
    True
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


def wait_until_answers(url, process, timeout=START_TIMEOUT):
    """Wait until ``url`` answers HTTP 200, while ``process`` runs.

    Returns True once it answers, False if ``process`` exited first; raises
    ``TimeoutError`` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                if reply.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"JupyterLab did not answer {url} in {timeout} s")
        time.sleep(0.3)
    return False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ip", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument(
        "--instructor",
        action="store_true",
        help="with nbgrader's formgrader and Create Assignment (make instructor)",
    )
    args = parser.parse_args(argv)
    role = "instructor" if args.instructor else "student"
    port = free_port(args.ip, args.port)
    token = os.environ.get("COURSE_LAB_TOKEN") or secrets.token_hex(24)
    # Tools that JupyterLab, its terminals and nbgrader's formgrader start by name
    # (jupyter, ipcluster, alembic) must be this environment's, as if it were activated.
    bin_dir = os.path.dirname(sys.executable)
    env = dict(os.environ, PATH=os.pathsep.join([bin_dir, os.environ.get("PATH", "")]))
    config = write_lab_config(Path(sys.prefix, "etc", "course-lab", role), role, bin_dir)
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        p for p in (str(config), os.environ.get("JUPYTER_CONFIG_PATH")) if p
    )
    server = subprocess.Popen(lab_command(args.ip, port, token), env=env)
    # SIGTERM to this process stops JupyterLab (it stops its kernels); Ctrl-C
    # reaches both processes, and JupyterLab decides.
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if wait_until_answers(f"http://{args.ip}:{port}/api/status?token={token}", server):
            url = f"http://{args.ip}:{port}/lab/tree/lessons?token={token}"
            print(f"\n  Open the course ({role}) at: {url}\n", flush=True)
    except TimeoutError as error:
        print(error, file=sys.stderr, flush=True)
        server.terminate()
    return server.wait()


if __name__ == "__main__":
    sys.exit(main())
