"""Every solution notebook runs top to bottom under nbval, warnings as errors;
every untouched student release runs top to bottom failing only in its exercises.

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

A student who skips an exercise must not lose the lesson that follows it: the
untouched release of every lesson (``lessons/*/*.ipynb``) runs in one kernel with
nbclient (this environment's ``python3`` kernel), continuing after errors, and only
exercise cells, quiz cells and their test cells may fail. Its last cell
(``cluster.stop()``) is left out, as a student who just closes the notebook would,
and once the kernel has exited neither its processes nor its files (in a private
``TMPDIR``) may be left.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import psutil
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE = (
    REPO_ROOT / "tests" / "fixtures" / "course" / "solutions" / "00_fixture" / "00_fixture.ipynb"
)
NOTEBOOKS = sorted((REPO_ROOT / "solutions").glob("*/*.ipynb"))
RELEASES = sorted((REPO_ROOT / "lessons").glob("*/*.ipynb"))
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


def _is_exercise(cell):
    """An exercise, a quiz or one of their test cells (nbgrader's graded cells)."""
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("solution") or meta.get("grade"))


def _errors(cell):
    return [o for o in cell.get("outputs", []) if o.output_type == "error"]


@pytest.mark.parametrize("release", RELEASES, ids=[p.parent.name for p in RELEASES])
def test_untouched_release_fails_only_in_exercises_and_cleans_up(
    release, tmp_path, assert_all_gone
):
    folder = tmp_path / release.parent.name
    shutil.copytree(release.parent, folder)
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    nb = nbformat.read(folder / release.name, as_version=4)
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    assert "cluster.stop()" in nb.cells[code[-1]].source, "the last code cell should stop"
    del nb.cells[code[-1] :]  # the student closes the notebook instead
    env = dict(os.environ, TMPDIR=str(private_tmp), COURSE_DATA=str(tmp_path / "data"))
    # No network: a download fails at once, on loopback (port 9 refuses).
    env["COURSE_SENTIMENT140_URL"] = "http://127.0.0.1:9/sentiment140.zip"
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(variable, "1")
    # This environment's own kernel: the strict one fails its shutdown request (ipykernel's
    # PendingDeprecationWarning), and a kernel killed at shutdown runs no exit hook.
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT,
        allow_errors=True,
        resources={"metadata": {"path": str(folder)}},
    )
    family = []
    with client.setup_kernel(env=env):
        kernel = psutil.Process(client.km.provisioner.process.pid)
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
            if cell.cell_type == "code":
                family = [kernel, *kernel.children(recursive=True)]
        family = [kernel, *kernel.children(recursive=True)]
    failed = [i for i, cell in enumerate(nb.cells) if _errors(cell)]
    teaching = [
        f"cell {i}: {_errors(nb.cells[i])[0].ename}: {_errors(nb.cells[i])[0].evalue}\n"
        + nb.cells[i].source[:300]
        for i in failed
        if not _is_exercise(nb.cells[i])
    ]
    assert not teaching, "teaching cells failed:\n" + "\n\n".join(teaching)
    assert any(_is_exercise(nb.cells[i]) for i in failed), "no exercise failed: vacuous run"
    assert len(family) >= 4, f"expected a kernel, a controller and 2 engines: {family}"
    assert_all_gone([p.pid for p in family], timeout=60)
    left = sorted(p.name for p in private_tmp.iterdir())
    assert not left, f"files left in TMPDIR after the kernel exited: {left}"
    left = sorted(p.name for p in folder.iterdir() if p.name != release.name)
    assert not left, f"files left next to the notebook: {left}"
