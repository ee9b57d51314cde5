"""JupyterLab started as `make lab` starts it, and Chromium driven by Playwright.

Both classes stop everything they started by PID, never by name: JupyterLab, the
kernels it starts, the engines those kernels start, the Playwright driver and Chromium.
The fixtures in conftest.py use them so that this happens whatever a test's outcome.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import urllib.request
from pathlib import Path

import psutil

from course_lib._processes import alive, process_tree, wait_gone

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: Where screenshots go (git-ignored); ``COURSE_ARTIFACTS`` overrides it.
ARTIFACTS = Path(os.environ.get("COURSE_ARTIFACTS", REPO / "build" / "artifacts"))
#: What the lab server may take to answer, in seconds (a busy 2-core CI machine).
LAB_START_TIMEOUT = 120
#: Grace period of every process after SIGTERM, before SIGKILL.
STOP_GRACE = 20

# xterm.js draws terminals on a canvas; in screen-reader mode it also keeps their rows
# as text in the page, where a test can read them. A user setting of the test's HOME.
TERMINAL_USER_SETTINGS = {"screenReaderMode": True}

#: Artifacts written during this run, listed again at its end (see conftest.py).
ARTIFACTS_WRITTEN = []


def record_artifact(path):
    """Print an artifact's path now and list it again at the end of the run."""
    ARTIFACTS_WRITTEN.append(Path(path))
    print(f"artifact: {path}")


def screenshot(page_or_element, name):
    """Save a screenshot of a page (or one element of it) as an artifact; return its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page_or_element.screenshot(path=str(path))
    record_artifact(path)
    return path


def notebook_cells(page):
    """The cells of the notebook shown in the main area."""
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")


def run_cell(page, cell, timeout_s=180):
    """Select a cell by its prompt, run it with Ctrl+Enter, wait until it has run
    (its prompt shows an execution count, not ``[*]``)."""
    cell.evaluate("el => el.scrollIntoView({block: 'center'})")
    prompt = cell.locator(".jp-InputPrompt").first
    prompt.click()
    page.keyboard.press("Control+Enter")
    page.wait_for_function(
        "el => /\\[\\d+\\]/.test(el.textContent)",
        arg=prompt.element_handle(),
        timeout=timeout_s * 1000,
    )


# ----------------------------------------------------------------------------------------
# Processes: stop a family by PID, never by name.


def kill_survivors(processes, grace=STOP_GRACE):
    """Wait ``grace`` seconds for ``processes`` to exit, then SIGKILL them by PID.

    Returns ``(killed, survivors)``: the processes that needed SIGKILL, and those
    still alive after it (normally none).
    """
    killed = wait_gone(processes, grace)
    for proc in killed:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    return killed, wait_gone(killed, 5)


# ----------------------------------------------------------------------------------------
# JupyterLab as `make lab` starts it, on a copy of the course.


class Lab:
    """A JupyterLab server started with ``python -m course_lib.lab`` in ``root``:
    ``make lab`` (a student's), or ``make instructor`` with ``instructor=True``."""

    def __init__(self, root, home, token, instructor=False):
        self.instructor = instructor
        self.root = root
        self.home = home
        self.token = token
        self.port = None
        self.proc = None
        self.log_path = home.parent / "lab.log"
        self.pids = set()  # every PID seen in the server's family
        self.killed = []  # processes that did not stop on their own after SIGTERM

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    def url(self, path):
        sep = "&" if "?" in path else "?"
        return f"{self.base}/{path.lstrip('/')}{sep}token={self.token}"

    def start(self):
        from course_lib.lab import free_port, start_course_lab

        self.port = free_port(preferred=0)  # never 8888: a student's lab may be there
        env = dict(os.environ)
        for variable in ("JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR", "JUPYTER_PATH"):
            env.pop(variable, None)
        env.update(
            HOME=str(self.home),
            JUPYTER_CONFIG_DIR=str(self.home / ".jupyter"),
            JUPYTER_DATA_DIR=str(self.home / ".local" / "share" / "jupyter"),
            JUPYTER_RUNTIME_DIR=str(self.home / "runtime"),
            IPYTHONDIR=str(self.home / ".ipython"),
        )
        self._log = open(self.log_path, "w")  # closed by stop()
        # `make lab` runs `python -m course_lib.lab --ip 127.0.0.1 --port PORT` in the
        # repository. Here the working directory is the copy: `-m` puts it first on
        # sys.path, so the copy's course_lib serves JupyterLab rooted at the copy.
        try:
            self.proc = start_course_lab(
                self.root,
                port=self.port,
                token=self.token,
                instructor=self.instructor,
                env=env,
                stdout=self._log,
                timeout=LAB_START_TIMEOUT,
            )
        except RuntimeError as error:
            raise RuntimeError(f"JupyterLab exited early ({error}):\n{self.log()}") from None
        return self

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def api(self, path):
        with urllib.request.urlopen(self.url(path), timeout=30) as reply:
            return json.loads(reply.read().decode())

    def remember_family(self):
        """Note every process of the server's family (kernels, engines) by PID."""
        if self.proc is not None:
            for proc in process_tree(self.proc.pid):
                self.pids.add(proc.pid)
            return process_tree(self.proc.pid)
        return []

    def stop(self):
        """SIGTERM ``course_lib.lab``: it passes it on to the server, which shuts its
        kernels down, and they stop their clusters;
        then SIGKILL by PID whatever of its family is still there."""
        if self.proc is None:
            return []
        family = self.remember_family()
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
        killed, survivors = kill_survivors(family)
        self.killed.extend(killed)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._log.close()
        self.proc = None
        return survivors


def copy_course(destination):
    """What `make lab` serves, copied: autosave rewrites notebooks it opens."""
    ignore = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.pyc")
    for folder in ("course_lib", "lessons", "solutions"):
        if (REPO / folder).is_dir():
            shutil.copytree(REPO / folder, destination / folder, ignore=ignore)
    for name in ("nbgrader_config.py", "pyproject.toml", "README.md"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, destination / name)


# ----------------------------------------------------------------------------------------
# Chromium through Playwright.


class Browser:
    """Chromium (Debian's) driven by Playwright, in a fresh profile and HOME."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.pids = set()
        self._playwright = None
        self.context = None

    def start(self):
        from playwright.sync_api import sync_playwright

        before = {p.pid for p in psutil.Process().children()}
        self._playwright = sync_playwright().start()
        home = self.workdir / "home"
        home.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, HOME=str(home))
        self.context = self._playwright.chromium.launch_persistent_context(
            str(self.workdir / "user-data"),  # fresh: a new temporary folder
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            env=env,
            viewport={"width": 1400, "height": 1000},
        )
        self._ours = [p for p in psutil.Process().children() if p.pid not in before]
        self.remember_family()
        return self

    def remember_family(self):
        family = []
        for child in getattr(self, "_ours", []):
            family.extend(process_tree(child.pid))
        self.pids.update(p.pid for p in family)
        return family

    def stop(self):
        family = self.remember_family()
        if self.context is not None:
            with contextlib.suppress(Exception):
                self.context.close()
        if self._playwright is not None:
            with contextlib.suppress(Exception):
                self._playwright.stop()
        for proc in family:  # the driver first asked nicely; now by PID
            with contextlib.suppress(psutil.Error):
                if alive(proc):
                    proc.terminate()
        return kill_survivors(family, grace=5)[1]
