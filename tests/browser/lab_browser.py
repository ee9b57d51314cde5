"""JupyterLab started as `make lab` starts it, and Chromium driven by Playwright.

Both classes stop everything they started by PID, never by name: JupyterLab, the
kernels it starts, the engines those kernels start, the Playwright driver and Chromium.
The fixtures in conftest.py use them so that this happens whatever a test's outcome.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
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


#: The notebook shown in the main area (JupyterLab hides the others).
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"
#: The status bar's words for an idle kernel of the course's notebooks.
KERNEL_IDLE = re.compile(r"Python 3 \(ipykernel\) \| Idle")
#: The processes of an ipyparallel cluster, by their command lines.
CLUSTER_KINDS = ("ipyparallel.controller", "ipyparallel.engine")


def notebook_cells(page):
    """The cells of the notebook shown in the main area."""
    return page.locator(f"{NOTEBOOK} .jp-Cell")


def open_notebook(page, lab, path, n_cells, timeout_s=120):
    """Open ``path`` as a student does (its URL), wait until its ``n_cells`` cells are
    drawn and its kernel is idle; return the cells."""
    page.goto(lab.url(f"/lab/tree/{path}"))
    page.wait_for_function(
        f"n => document.querySelectorAll('{NOTEBOOK} .jp-Cell').length === n",
        arg=n_cells,
        timeout=timeout_s * 1000,
    )
    wait_for_kernel_idle(page, timeout_s)
    return notebook_cells(page)


def wait_for_kernel_idle(page, timeout_s=120):
    """Wait until the status bar says the notebook's kernel is idle."""
    page.get_by_text(KERNEL_IDLE).first.wait_for(timeout=timeout_s * 1000)


def _prompt_count(prompt):
    found = re.search(r"\[(\d+)\]", prompt.text_content() or "")
    return int(found.group(1)) if found else 0


def run_cell(page, cell, timeout_s=180):
    """Select a cell by its prompt, run it with Ctrl+Enter, wait until it has run
    (its prompt shows a new execution count, not ``[*]``); return that count."""
    cell.evaluate("el => el.scrollIntoView({block: 'center'})")
    prompt = cell.locator(".jp-InputPrompt").first
    before = _prompt_count(prompt)
    prompt.click()
    page.keyboard.press("Control+Enter")
    page.wait_for_function(
        "([el, before]) => { const m = /\\[(\\d+)\\]/.exec(el.textContent);"
        " return m !== null && Number(m[1]) > before; }",
        arg=[prompt.element_handle(), before],
        timeout=timeout_s * 1000,
    )
    return _prompt_count(prompt)


def replace_cell_source(page, cell, source):
    """Replace what a cell holds with ``source``, as a student pasting it would
    (no auto-indent on the way); the cell is left in edit mode."""
    cell.evaluate("el => el.scrollIntoView({block: 'center'})")
    cell.locator(".cm-content").first.click()
    page.keyboard.press("Control+a")
    page.keyboard.insert_text(source)


def code_prompts(page):
    """The prompt of every code cell of the notebook shown, in order: ``"[3]:"``,
    ``"[*]:"`` (running or queued) or ``"[ ]:"`` (not run)."""
    return page.evaluate(
        f"() => Array.from(document.querySelectorAll("
        f"'{NOTEBOOK} .jp-CodeCell .jp-InputArea .jp-InputPrompt'), p => p.textContent.trim())"
    )


def _code_cell_output(page, index):
    """The text of the outputs of the notebook's code cell ``index`` (from 0)."""
    return page.evaluate(
        f"(i) => {{ const c = document.querySelectorAll('{NOTEBOOK} .jp-CodeCell')[i];"
        f" const o = c && c.querySelector('.jp-OutputArea');"
        f" return o ? o.innerText : ''; }}",
        index,
    )


def notebook_kernel_state(page):
    """The execution state (``"busy"``, ``"idle"``, ...) of the kernel of the notebook
    shown, as the Jupyter server knows it (``/api/sessions``); None if it has none."""
    return page.evaluate(
        """async () => {
            const path = decodeURIComponent(location.pathname.split('/lab/tree/')[1] || '');
            const sessions = await (await fetch('/api/sessions')).json();
            const found = sessions.find(s => s.path === path);
            return found && found.kernel ? found.kernel.execution_state : null;
        }"""
    )


def run_all_cells(page, timeout_s, on_poll=None, idle_polls=5):
    """Run the notebook shown with JupyterLab's menu Run > Run All Cells, as a student
    does, and wait until its last code cell has run and its kernel is idle.

    What is still to run is judged by the kernel, not by the prompts: after the first
    cell that fails (an unanswered exercise, tagged ``raises-exception``), JupyterLab
    shows every queued cell as ``[ ]`` again although the kernel runs them all. Run All
    has stopped when the kernel stays idle for ``idle_polls`` polls, a second apart,
    and the last code cell has no execution count.

    ``on_poll()`` is called about once a second while it runs (to note processes).
    Raises AssertionError, naming the cell and what it showed, when Run All stops
    before the end (a cell failed that is not tagged ``raises-exception``).
    """
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    deadline = time.monotonic() + timeout_s
    started, idle = False, 0
    while True:
        prompts = code_prompts(page)
        busy = notebook_kernel_state(page) != "idle"
        started = started or busy or bool(re.search(r"\d", prompts[0]))
        idle = idle + 1 if started and not busy else 0
        if idle >= idle_polls:
            if re.search(r"\d", prompts[-1]):
                break
            never = next(i for i, p in enumerate(prompts) if not re.search(r"\d", p))
            raise AssertionError(
                f"Run All stopped before the end: code cell {never - 1} (counting code cells "
                f"from 0) was the last to run, of {len(prompts)}; what it showed: "
                f"{_code_cell_output(page, never - 1)!r}; prompts: {prompts}"
            )
        assert time.monotonic() < deadline, f"Run All did not end in {timeout_s} s: {prompts}"
        if on_poll is not None:
            on_poll()
        time.sleep(1)
    wait_for_kernel_idle(page, 60)


def save_notebook(page, name):
    """Save the notebook shown (Ctrl+S, in command mode) and wait until its tab,
    titled ``name``, no longer shows it as modified."""
    page.keyboard.press("Escape")
    page.keyboard.press("Control+s")
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=name).first
    page.wait_for_function(
        "el => !el.classList.contains('jp-mod-dirty')", arg=tab.element_handle(), timeout=60_000
    )


def cluster_processes(lab):
    """(controllers, engines) among the lab server's descendants now, as sets of PIDs.

    A controller's forked helpers (schedulers) share its command line: only the
    process whose parent is not of the same kind counts.
    """
    kinds = {}
    for proc in lab.remember_family():
        try:
            command = " ".join(proc.cmdline())
            parent = proc.ppid()
        except psutil.Error:
            continue
        for kind in CLUSTER_KINDS:
            if kind in command:
                kinds[proc.pid] = (kind, parent)
    found = {kind: set() for kind in CLUSTER_KINDS}
    for pid, (kind, parent) in kinds.items():
        if kinds.get(parent, (None,))[0] != kind:
            found[kind].add(pid)
    return found["ipyparallel.controller"], found["ipyparallel.engine"]


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
