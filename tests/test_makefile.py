"""The Makefile's guard: on a Python older than the course needs, `make lab` and `make
test` stop at once, in one sentence, before creating or installing anything.

Twice: with a real older Python (CI sets one up: ``old-python`` in tests/system_tools.py),
and with this Python against a copy of pyproject.toml whose bound is raised above it, which
runs on every machine.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from system_tools import unavailable

REPO = Path(__file__).resolve().parent.parent
#: What a make that runs these tests (make test, make test-lowest) passes down to the
#: makes they start, and the Makefile's own variables, which they must not inherit.
MAKE_VARIABLES = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "DEPS", "PYTHON", "LOWEST_PYTHON",
                  "NEWEST_PYTHON", "PYTEST_ARGS")  # fmt: skip


def run_make(*args, cwd=REPO):
    """``make ARGS`` in ``cwd`` as a user types it, whatever make runs these tests."""
    env = {key: value for key, value in os.environ.items() if key not in MAKE_VARIABLES}
    return subprocess.run(
        ["make", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _oldest():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return re.fullmatch(r">=(3\.(\d+))", project["requires-python"]).groups()


def _too_old_python():
    """An interpreter on this machine older than requires-python allows, or None."""
    _, minor = _oldest()
    candidates = [shutil.which(f"python3.{n}") for n in range(int(minor) - 1, 5, -1)]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.*/bin/python3")))
    for candidate in filter(None, candidates):
        try:
            found = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[1])"],
                capture_output=True,
                text=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if found.returncode == 0 and int(found.stdout) < int(minor):
            return candidate, f"3.{int(found.stdout)}"
    return None


def _course_copy(folder, requires=None):
    """What make reads, with no venv; ``requires`` replaces requires-python's bound."""
    shutil.copy(REPO / "Makefile", folder / "Makefile")
    text = (REPO / "pyproject.toml").read_text()
    if requires is not None:
        text, count = re.subn(
            r'^requires-python = ">=[0-9.]+"', f'requires-python = ">={requires}"', text, flags=re.M
        )
        assert count == 1
    (folder / "pyproject.toml").write_text(text)


@pytest.mark.parametrize("target", ["lab", "test"])
@pytest.mark.parametrize("interpreter", ["older", "raised bound"])
def test_make_stops_at_once_on_a_too_old_python(tmp_path, target, interpreter):
    if interpreter == "older":
        needed, _ = _oldest()
        old = _too_old_python()
        if old is None:
            unavailable("old-python", f"no Python older than {needed} on PATH or in ~/.pyenv")
        python, version = old
        _course_copy(tmp_path)
    else:  # this Python, one minor version short of the copy's bound
        major, minor = sys.version_info[:2]
        python, version, needed = sys.executable, f"{major}.{minor}", f"{major}.{minor + 1}"
        _course_copy(tmp_path, requires=needed)
    # Nothing may be created in the copy.
    result = run_make(target, f"PYTHON={python}", cwd=tmp_path)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if not line.startswith("make: ***")]
    assert lines == [
        f"make: {python} is Python {version}, but this course needs Python {needed} or "
        f"newer: run make with PYTHON=python{needed} or newer."
    ], result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["Makefile", "pyproject.toml"]
    assert "pip install" not in result.stdout
