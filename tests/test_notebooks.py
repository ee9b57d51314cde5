"""Every solution notebook runs top to bottom under nbval, warnings as errors.

``pytest -W error`` does not reach notebook kernels, and ``PYTHONWARNINGS``
would also reach the ipyparallel engines, which die of a deprecation inside
ipykernel. So the notebooks run in a dedicated kernel, ``course-strict``,
written at test time into a temporary ``JUPYTER_PATH``: it is this
environment's ipykernel, started with a file that turns
``DeprecationWarning``, ``PendingDeprecationWarning`` and ``FutureWarning``
into errors in the kernel, after IPython's own warning filters.

The tests are parametrized over ``solutions/*/*.ipynb`` (lessons added later
are covered automatically), plus the grading fixture lesson, so that the
strict kernel is proven with a live cluster even when no lesson exists yet.
Each notebook runs with ``--nbval-lax`` in a pytest process of its own.

A student who skips an exercise must not lose the lesson that follows it: that
the untouched release runs to the end failing only in its exercises, and leaves no
process and no file behind, is checked where it is graded, once for the suite
(``tests/test_release.py``, through ``verify_exercises``), not by running it again.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE = (
    REPO_ROOT / "tests" / "fixtures" / "course" / "solutions" / "00_fixture" / "00_fixture.ipynb"
)
NOTEBOOKS = sorted((REPO_ROOT / "solutions").glob("*/*.ipynb"))
KERNEL = "course-strict"
#: Seconds a cell may run: a whole lesson runs in under 3 minutes.
CELL_TIMEOUT = 300

STRICT_WARNINGS = """\
# Started in every course-strict kernel (tests/test_notebooks.py).
import warnings as _warnings

for _category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
    _warnings.filterwarnings("error", category=_category)
# Third-party, not the lesson's: on Python 3.12+ ipykernel starts tornado's IOLoop through
# asyncio.get_event_loop() with no loop running yet, which warns.
_warnings.filterwarnings(
    "ignore", "There is no current event loop", DeprecationWarning, "tornado.ioloop"
)
del _category, _warnings
"""

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def strict_kernel(tmp_path_factory):
    """A JUPYTER_PATH holding the ``course-strict`` kernelspec, and an ini file."""
    root = tmp_path_factory.mktemp("strict-kernel")
    startup = root / "strict_warnings.py"
    startup.write_text(STRICT_WARNINGS)
    spec_dir = root / "jupyter" / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    argv.append(f"--IPKernelApp.exec_files={startup}")
    spec = {"argv": argv, "display_name": "Python 3 (warnings are errors)", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    ini = root / "nbval.ini"
    ini.write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    return root


def run_nbval(notebook, strict_kernel):
    """Run one notebook under nbval in the strict kernel; return the process."""
    env = dict(os.environ)
    env["JUPYTER_PATH"] = os.pathsep.join(
        p for p in (str(strict_kernel / "jupyter"), env.get("JUPYTER_PATH")) if p
    )
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(variable, "1")
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(strict_kernel / "nbval.ini"),
        "--rootdir",
        str(Path(notebook).parent),
        "--nbval-lax",
        f"--nbval-kernel-name={KERNEL}",
        f"--nbval-cell-timeout={CELL_TIMEOUT}",
        "-q",
        str(notebook),
    ]
    return subprocess.run(
        command, cwd=Path(notebook).parent, env=env, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    "notebook",
    [*NOTEBOOKS, FIXTURE],
    ids=[*(p.parent.name for p in NOTEBOOKS), "grading-fixture"],
)
def test_solution_notebook_runs_without_errors_or_deprecations(notebook, strict_kernel):
    result = run_nbval(notebook, strict_kernel)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_the_strict_kernel_turns_deprecations_into_errors(strict_kernel, tmp_path):
    notebook = tmp_path / "deprecated.ipynb"
    cells = [
        new_code_cell("import warnings\n\n\ndef old():\n    warnings.warn('old', FutureWarning)"),
        new_code_cell("warnings.warn('direct', DeprecationWarning)"),
        new_code_cell("old()"),
    ]
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(new_notebook(cells=cells, metadata={"kernelspec": kernelspec}), notebook)
    result = run_nbval(notebook, strict_kernel)
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout)  # no colours
    assert result.returncode == 1
    assert "1 passed" in output and "2 failed" in output, output[-3000:]
    assert "DeprecationWarning: direct" in output
    assert "FutureWarning: old" in output
