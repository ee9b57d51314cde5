"""The Binder configuration in binder/, proven without Docker.

repo2docker builds the student image in three steps, all read from binder/:
``pip install -r binder/requirements.txt``, then ``./binder/postBuild`` in the
repository's folder (the image's ``$HOME``), and at every start ``binder/start`` in
front of the server's command. The slow tests here do the same in a fresh virtual
environment (created with ``uv`` when the project's environment has it, as `make`
installs it: seconds instead of a minute), then run lesson 1 in that environment's
kernel and check the student's JupyterLab. Nothing is cached in the repository:
everything lives in pytest's temporary folders. They need the package registries,
which CI has.

repo2docker itself renders its Dockerfile without a Docker engine
(``repo2docker --no-build --debug``); the last test checks that this Dockerfile
installs binder/requirements.txt, runs binder/postBuild and starts with binder/start.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

import psutil
import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from system_tools import unavailable

from course_lib import _processes
from course_lib.lab import free_port

REPO = Path(__file__).resolve().parent.parent
BINDER = REPO / "binder"
LESSON = "01_parallel_primer"
#: The repo2docker whose Dockerfile is checked (pinned: its output changes between
#: releases).
REPO2DOCKER = "jupyter-repo2docker==2026.4.0"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _pins():
    pins = {}
    for line in (BINDER / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"binder/requirements.txt: {line!r} is not pinned with =="
            pins[canonicalize_name(name)] = version
    return pins


def test_binder_pins_satisfy_the_course_requirements():
    """Every requirement of course_lib and its `course` extra is pinned, compatibly."""
    pins = _pins()
    for line in metadata.requires("course_lib"):
        requirement = Requirement(line)
        if requirement.marker and not any(
            requirement.marker.evaluate({"extra": extra}) for extra in ("", "course")
        ):
            continue  # the test extra: not for students
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not pinned in binder/requirements.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"binder/requirements.txt pins {name}=={pins[name]}, course_lib wants {line}"
        )
    for tool in ("pip", "setuptools", "wheel", "pytest", "course-lib"):
        assert tool not in pins, f"binder/requirements.txt should not pin {tool}"
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.\d+", runtime), runtime
    requires_python = SpecifierSet(metadata.metadata("course_lib")["Requires-Python"])
    assert requires_python.contains(runtime.removeprefix("python-") + ".0")


def _freeze_script():
    path = BINDER / "freeze_requirements.py"
    spec = importlib.util.spec_from_file_location("freeze_requirements", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_binder_pins_are_up_to_date_with_pyproject(tmp_path):
    """The pins were made for what pyproject.toml asks for now, on runtime.txt's Python."""
    freeze = _freeze_script()
    text = (BINDER / "requirements.txt").read_text()
    assert freeze.recorded(text) == freeze.declared(), (
        "pyproject.toml changed since binder/requirements.txt was made: regenerate it with "
        "`.venv/bin/python binder/freeze_requirements.py > binder/requirements.txt` "
        "(after `make test`, which reinstalls .venv)"
    )
    made_with = re.search(r"\(Python (3\.\d+)\.\d+, ", text).group(1)
    runtime = (BINDER / "runtime.txt").read_text().strip().removeprefix("python-")
    assert made_with == runtime, f"pins made on Python {made_with}, Binder runs {runtime}"
    # A raised bound is a change the check sees.
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        (REPO / "pyproject.toml").read_text().replace('"joblib>=', '"joblib>=99, >=', 1)
    )
    assert freeze.recorded(text) != freeze.declared(pyproject)


# ----------------------------------------------------------------------------------------
# The Binder environment, built the way repo2docker builds it.


def _copy_repository(destination):
    """The repository as Binder clones it: tracked files (and new, not ignored ones)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout.decode()
        files = [name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        files = None
    if not files:  # not a git checkout: everything but what git would ignore
        ignore = shutil.ignore_patterns(".git", ".venv", "build", "__pycache__", "*.egg-info")
        shutil.copytree(REPO, destination, ignore=ignore, dirs_exist_ok=True)
        return
    for name in files:
        source = REPO / name
        if source.is_file():  # deleted but still tracked: not in the clone either
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _binder_python():
    """The interpreter for runtime.txt's version: this one if it matches."""
    version = (BINDER / "runtime.txt").read_text().strip().removeprefix("python-")
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    found = shutil.which(f"python{version}")
    if found:
        return found
    unavailable("binder-python", f"binder/runtime.txt asks for {version}: no python{version}")


def _uv():
    for candidate in (Path(sys.executable).parent / "uv", shutil.which("uv")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    return None


def _run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    assert result.returncode == 0, (
        f"{' '.join(map(str, command))} failed ({result.returncode}):\n"
        f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    )
    return result


def _clean_env(**extra):
    """This process's environment without what would leak the test venv into another."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", *THREAD_VARIABLES)
        and not key.startswith(("JUPYTER", "IPYTHON"))
    }
    env.update(extra)
    return env


class BinderEnv:
    """A copy of the repository (the image's $HOME) and the environment built there."""

    def __init__(self, home, venv):
        self.home = home
        self.venv = venv
        self.python = venv / "bin" / "python"

    def env(self, **extra):
        """The image's environment: its Python first on PATH, HOME the repository."""
        path = os.pathsep.join([str(self.venv / "bin"), os.environ.get("PATH", "")])
        return _clean_env(PATH=path, HOME=str(self.home), VIRTUAL_ENV=str(self.venv), **extra)

    def processes(self):
        """Live processes running this environment's Python (kernels, engines, servers)."""
        mine = []
        prefix = str(self.venv)
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if any(part.startswith(prefix) for part in cmdline[:2]) and _processes.alive(proc):
                mine.append(proc)
        return mine


@pytest.fixture(scope="module")
def binder_env(tmp_path_factory):
    """requirements.txt, then postBuild, in a fresh venv, as repo2docker does."""
    root = tmp_path_factory.mktemp("binder")
    home = root / "home"
    venv = root / "venv"
    home.mkdir()
    _copy_repository(home)
    python = _binder_python()
    started = time.monotonic()
    uv = _uv()
    if uv:
        _run([uv, "venv", "--seed", "--quiet", "--python", python, str(venv)])
        _run(
            [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "-r",
             "binder/requirements.txt"],
            cwd=home,
        )  # fmt: skip
    else:
        _run([python, "-m", "venv", str(venv)])
        _run(
            [str(venv / "bin" / "pip"), "install", "--no-cache-dir", "-r",
             "binder/requirements.txt"],
            cwd=home,
        )  # fmt: skip
    installed = time.monotonic()
    environment = BinderEnv(home, venv)
    # repo2docker: `RUN chmod +x binder/postBuild` then `RUN ./binder/postBuild`.
    postbuild = home / "binder" / "postBuild"
    postbuild.chmod(postbuild.stat().st_mode | 0o111)
    _run(["./binder/postBuild"], cwd=home, env=environment.env())
    print(
        f"binder env: install {installed - started:.1f} s ({'uv' if uv else 'pip'}), "
        f"postBuild {time.monotonic() - installed:.1f} s"
    )
    yield environment
    _processes.stop(environment.processes())  # ours alone: the venv is a fresh folder


# The lesson, executed with nbclient inside the Binder environment (so in its kernel).
RUNNER = textwrap.dedent(
    """
    import json, os, sys
    import nbformat
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell

    THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    PROBE = (
        "import json, os, sys, course_lib\\n"
        "print(json.dumps({'course_lib': course_lib.__file__, 'python': sys.executable,"
        " 'threads': {v: os.environ.get(v) for v in %r}}))" % (THREAD_VARIABLES,)
    )

    path, strict = sys.argv[1], sys.argv[2] == "strict"
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(new_code_cell(PROBE))
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", allow_errors=not strict,
        resources={"metadata": {"path": os.path.dirname(path)}},
    )
    client.execute()
    cells = []
    for index, cell in enumerate(nb.cells[:-1]):
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        errors = [f"{o.ename}: {o.evalue}" for o in cell.outputs if o.output_type == "error"]
        cells.append({
            "index": index, "graded": bool(meta.get("solution") or meta.get("grade")),
            "ran": cell.execution_count is not None, "errors": errors,
            "starts_cluster": "local_cluster(" in cell.source, "source": cell.source[:80],
        })
    probe = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    print("RESULT " + json.dumps({"cells": cells, "probe": json.loads(probe)}))
    """
)


def _run_lesson(binder_env, notebook, strict):
    script = binder_env.home.parent / "run_lesson.py"
    script.write_text(RUNNER)
    # As in the image: binder/start in front of the command, no thread variables set.
    result = _run(
        ["./binder/start", str(binder_env.python), str(script), str(notebook),
         "strict" if strict else "lax"],
        cwd=binder_env.home,
        env=binder_env.env(),
        timeout=1200,
    )  # fmt: skip
    line = next(x for x in reversed(result.stdout.splitlines()) if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def _assert_nothing_left(binder_env):
    left = _processes.wait_gone(binder_env.processes(), timeout=15)
    _processes.stop(left)
    assert not left, f"still running after the lesson: {[p.cmdline()[:4] for p in left]}"


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_lesson_1_runs_in_the_binder_environment(binder_env):
    started = time.monotonic()
    release = binder_env.home / "lessons" / LESSON / f"{LESSON}.ipynb"
    report = _run_lesson(binder_env, release, strict=False)
    probe = report.pop("probe")
    # The kernel is the Binder environment's, with course_lib installed by postBuild
    # (not read from the repository's folder), and binder/start's thread settings.
    assert probe["python"].startswith(str(binder_env.venv)), probe
    assert probe["course_lib"].startswith(str(binder_env.venv)), probe
    assert probe["threads"] == dict.fromkeys(THREAD_VARIABLES, "1"), probe
    cells = report["cells"]
    assert all(cell["ran"] for cell in cells), [c for c in cells if not c["ran"]]
    # A student's blank exercises fail, and their tests with them. Other cells may only
    # fail by calling a blank exercise (its placeholder raises NotImplementedError).
    broken = [
        c
        for c in cells
        if not c["graded"] and any(not e.startswith("NotImplementedError") for e in c["errors"])
    ]
    assert not broken, json.dumps(broken, indent=1)
    setup = [c for c in cells if c["starts_cluster"]]
    assert setup and not setup[0]["errors"], setup
    _assert_nothing_left(binder_env)

    # The reference answers run too, without a single error: everything the graded
    # parts need is in the environment.
    solution = binder_env.home / "solutions" / LESSON / f"{LESSON}.ipynb"
    report = _run_lesson(binder_env, solution, strict=True)
    assert not [c for c in report["cells"] if c["errors"]]
    _assert_nothing_left(binder_env)
    print(f"lesson 1 released + solved in the Binder env: {time.monotonic() - started:.1f} s")


# ----------------------------------------------------------------------------------------
# The student's JupyterLab in that environment.


def _get(url):
    with urllib.request.urlopen(url, timeout=30) as reply:
        return reply.status, reply.geturl(), reply.read().decode()


def _status(url):
    try:
        return _get(url)[0]
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None  # not listening yet


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_binder_jupyterlab_is_the_students(binder_env):
    port, token = free_port(preferred=0), os.urandom(12).hex()
    command = [
        "./binder/start", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
    ]  # fmt: skip
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = binder_env.home.parent / "jupyterlab.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            command,
            cwd=binder_env.home,
            env=binder_env.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while _status(f"{base}/api/status?token={token}") != 200:
            assert server.poll() is None, log.read_text()[-4000:]
            assert time.monotonic() < deadline, "JupyterLab did not answer in 120 s"
            time.sleep(0.5)
        # It opens on the lessons.
        _, landed, _ = _get(f"{base}/?token={token}")
        assert landed.split("?")[0] == f"{base}/lab/tree/lessons", landed
        # No news pop-up: the settings override is in place.
        _, _, body = _get(
            f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification?token={token}"
        )
        defaults = json.loads(body)["schema"]["properties"]  # overrides are defaults
        assert defaults["fetchNews"]["default"] == "false", defaults["fetchNews"]
        assert defaults["checkForUpdates"]["default"] is False
        # nbgrader: the student's extensions only.
        assert _status(f"{base}/nbgrader_version?version=0.9.6&token={token}") == 200
        assert _status(f"{base}/formgrader?token={token}") == 404
        assert _status(f"{base}/formgrader/api/assignments?token={token}") == 404
        _, _, page = _get(f"{base}/lab?token={token}")
        config = json.loads(
            re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', page, re.S).group(1)
        )
        disabled = set(config["disabledExtensions"])
        for plugin in ("formgrader", "create-assignment", "course-list"):
            assert f"@jupyter/nbgrader:{plugin}" in disabled
        for plugin in ("assignment-list", "validate-assignment"):
            assert f"@jupyter/nbgrader:{plugin}" not in disabled
        extensions = {ext["name"] for ext in config["federated_extensions"]}
        assert {"@jupyter/nbgrader", "ipyparallel-labextension"} <= extensions
        # ipyparallel's server extension: the Clusters sidebar's API.
        assert _status(f"{base}/ipyparallel/clusters?token={token}") == 200
    finally:
        family = _processes.process_tree(server.pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        _processes.stop(family[1:])
    _assert_nothing_left(binder_env)


def test_binder_terminals_find_the_course_commands(binder_env):
    """JupyterLab's terminal runs the shell that postBuild configured: even after
    /etc/profile resets PATH, the environment's python and nbgrader come first."""
    config = binder_env.venv / "etc" / "jupyter" / "jupyter_server_config.d" / "course-lab.json"
    shell = json.loads(config.read_text())["ServerApp"]["terminado_settings"]["shell_command"]
    result = subprocess.run(
        [*shell, "-c", "command -v python; command -v nbgrader; command -v ipcluster"],
        env=_clean_env(PATH="/usr/bin:/bin", HOME=str(binder_env.home), TERM="dumb"),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    bin_dir = binder_env.venv / "bin"
    assert result.stdout.split() == [
        str(bin_dir / "python"),
        str(bin_dir / "nbgrader"),
        str(bin_dir / "ipcluster"),
    ], result.stdout + result.stderr


# ----------------------------------------------------------------------------------------
# repo2docker's own Dockerfile, rendered without Docker.


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_repo2docker_dockerfile_uses_the_binder_folder(tmp_path):
    uv = _uv()
    tools = tmp_path / "repo2docker"
    if uv:
        _run([uv, "venv", "--quiet", "--python", sys.executable, str(tools)])
        _run([uv, "pip", "install", "--quiet", "--python", str(tools / "bin" / "python"),
              REPO2DOCKER])  # fmt: skip
    else:
        _run([sys.executable, "-m", "venv", str(tools)])
        _run([str(tools / "bin" / "pip"), "install", "--quiet", REPO2DOCKER])
    home = tmp_path / "repo"
    home.mkdir()
    _copy_repository(home)
    # As mybinder.org builds it: user jovyan, uid 1000.
    result = _run(
        [str(tools / "bin" / "repo2docker"), "--no-build", "--debug", "--user-id", "1000",
         "--user-name", "jovyan", str(home)],
        cwd=tmp_path,
        env=_clean_env(),
    )  # fmt: skip
    dockerfile = result.stdout + result.stderr
    assert "FROM " in dockerfile, dockerfile[-3000:]
    assert "Building conda environment for python=3.11" in dockerfile
    steps = [
        "COPY --chown=1000:1000 src/binder/requirements.txt ${REPO_DIR}/binder/requirements.txt",
        'RUN ${KERNEL_PYTHON_PREFIX}/bin/pip install --no-cache-dir -r "binder/requirements.txt"',
        "COPY --chown=1000:1000 src/ ${REPO_DIR}/",
        "RUN ./binder/postBuild",
        'ENV R2D_ENTRYPOINT="${REPO_DIR}/binder/start"',
    ]
    positions = [dockerfile.find(step) for step in steps]
    assert -1 not in positions, [s for s, p in zip(steps, positions, strict=True) if p < 0]
    assert positions == sorted(positions), "the Dockerfile's steps are not in this order"
    # With a binder/ folder, repo2docker ignores the root pyproject.toml: postBuild
    # alone installs course_lib.
    assert "pip install --no-cache-dir .\n" not in dockerfile
