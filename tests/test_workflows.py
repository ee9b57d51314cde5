"""The GitHub Actions workflows in .github/, checked here before GitHub runs them.

actionlint (with shellcheck on every ``run:`` block) must pass on every workflow; the
workflows must test the Pythons and dependency sets that pyproject.toml and the
Makefile name; the Binder badge check (.github/scripts/check_binder_badge.py) must
tell a right badge from a wrong one.
"""

import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from test_makefile import run_make

REPO = Path(__file__).resolve().parent.parent
GITHUB = REPO / ".github"
WORKFLOWS = sorted((GITHUB / "workflows").glob("*.yml"))
BIN = Path(sys.executable).parent


def _tool(name):
    """A command installed by the test extra (next to this Python), else on PATH."""
    found = BIN / name if (BIN / name).exists() else shutil.which(name)
    assert found, f"{name} not found: install the test extra (make test does)"
    return str(found)


def _actionlint(cwd):
    return subprocess.run(
        [_tool("actionlint"), "-shellcheck", _tool("shellcheck"), "-no-color"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_actionlint_passes_on_every_workflow():
    assert {path.name for path in WORKFLOWS} >= {
        "ci.yml", "suite.yml", "lowest.yml", "newest.yml", "binder.yml",
    }  # fmt: skip
    result = _actionlint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_and_shellcheck_catch_a_broken_workflow(tmp_path):
    """The same command fails on a workflow with a typo and a shell mistake."""
    shutil.copytree(GITHUB, tmp_path / ".github")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)  # actionlint's root
    (tmp_path / ".github" / "workflows" / "broken.yml").write_text(
        "on: push\n"
        "jobs:\n"
        "  broken:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - run: echo ${{ github.repositorie }}\n"
        "      - run: ls $HOME/*.txt | wc -l && cd $RUNNER_TEMP\n"
    )
    result = _actionlint(tmp_path)
    assert result.returncode != 0
    assert "repositorie" in result.stdout, result.stdout  # actionlint's own check
    assert "SC2086" in result.stdout, result.stdout  # shellcheck's
    assert "ci.yml" not in result.stdout, result.stdout  # the real ones stay clean


def _load(name):
    return yaml.safe_load((GITHUB / "workflows" / name).read_text())


def _claimed_pythons():
    """The oldest and the newest Python pyproject.toml claims."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    oldest = re.fullmatch(r">=(3\.\d+)", project["requires-python"]).group(1)
    prefix = "Programming Language :: Python :: "
    minors = [c.removeprefix(prefix) for c in project["classifiers"] if c.startswith(prefix)]
    newest = max((m for m in minors if re.fullmatch(r"3\.\d+", m)), key=lambda m: int(m[2:]))
    assert f"{prefix}{oldest}" in project["classifiers"]
    return oldest, newest


def _suite_call(workflow, job):
    call = _load(workflow)["jobs"][job]
    assert call["uses"] == "./.github/workflows/suite.yml"
    return call["with"]


def test_workflows_run_the_pythons_and_versions_pyproject_claims():
    oldest, newest = _claimed_pythons()
    ci = _load("ci.yml")
    assert ci["jobs"]["test"]["strategy"]["matrix"]["python"] == [oldest, newest]
    assert _suite_call("ci.yml", "test").get("deps", "default") == "default"
    assert _suite_call("lowest.yml", "lowest") == {"python": oldest, "deps": "lowest"}
    assert _suite_call("newest.yml", "newest") == {"python": newest, "deps": "newest"}
    # PyYAML reads the key `on` as True.
    assert set(ci[True]) >= {"push", "pull_request"}
    assert "push" in _load("lowest.yml")[True]
    assert set(_load("newest.yml")[True]) == {"schedule", "workflow_dispatch"}
    assert _load("binder.yml")[True]["pull_request"]["paths"] == ["binder/**"]


def test_suite_runs_ci_run_as_the_project_does():
    steps = _load("suite.yml")["jobs"]["test"]["steps"]
    runs = [step["run"] for step in steps if "run" in step]
    assert any("bash .ci/run" in run and run.startswith("sudo -E") for run in runs), runs
    step = next(step for step in steps if "bash .ci/run" in step.get("run", ""))
    assert step["env"]["DEPS"] == "${{ inputs.deps }}"
    # Screenshots go where the browser tests write them, and are uploaded on failure.
    artifacts = step["env"]["COURSE_ARTIFACTS"]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "failure()" and upload["with"]["path"] == artifacts
    assert "COURSE_ARTIFACTS" in (REPO / "tests" / "browser" / "lab_browser.py").read_text()
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache"))
    assert "hashFiles('pyproject.toml')" in cache["with"]["key"]


def test_make_runs_lowest_and_newest_on_the_claimed_pythons():
    oldest, newest = _claimed_pythons()
    result = run_make("-n", "test-lowest", "test-newest")
    assert result.returncode == 0, result.stderr
    assert f"test DEPS=lowest PYTHON=python{oldest}" in result.stdout, result.stdout
    assert f"test DEPS=newest PYTHON=python{newest}" in result.stdout, result.stdout
    assert "rm -rf .venv-lowest" in result.stdout and "rm -rf .venv-newest" in result.stdout


# ----------------------------------------------------------------------------------------
# The Binder badge check.


def _badge_script():
    path = GITHUB / "scripts" / "check_binder_badge.py"
    spec = importlib.util.spec_from_file_location("check_binder_badge", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BADGE = "[![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/{}/HEAD)\n"


@pytest.mark.parametrize(
    ("target", "repository", "fork", "level"),
    [
        ("me/course", "me/course", False, None),
        ("Me/Course", "me/course", False, None),  # GitHub names ignore case
        ("OWNER/REPO", "me/course", False, "warning"),
        ("upstream/course", "me/course", True, "warning"),
        ("upstream/course", "me/course", False, "error"),
    ],
)
def test_binder_badge_check(tmp_path, capsys, target, repository, fork, level):
    readme = tmp_path / "README.md"
    readme.write_text("# Course\n\n" + BADGE.format(target))
    argv = [str(readme), repository, *(["--fork"] if fork else [])]
    status = _badge_script().main(argv)
    out = capsys.readouterr().out
    assert status == (1 if level == "error" else 0), out
    if level is None:
        assert "::" not in out, out
    else:
        assert out.startswith(f"::{level} file={readme},line=3::"), out
        assert repository in out


def test_binder_badge_check_needs_a_badge_and_a_repository(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# Course without a badge\n")
    assert _badge_script().main([str(readme), "me/course"]) == 1
    assert capsys.readouterr().out.startswith("::error ")
    with pytest.raises(SystemExit):
        _badge_script().main([str(readme), "not a repository"])
    assert "'not a repository'" in capsys.readouterr().err


def test_every_binder_link_in_the_readme_names_one_repository():
    """One OWNER/REPO to replace in a fork, which the check then accepts."""
    script = _badge_script()
    text = (REPO / "README.md").read_text()
    targets = {"/".join(match) for match in script.LINK.findall(text)}
    assert len(targets) == 1, targets
    (target,) = targets
    if target != script.PLACEHOLDER:
        assert script.problems(text, target, fork=False) == []
    assert script.problems(text, "someone/else", fork=False)[0][0] == (
        "warning" if target == script.PLACEHOLDER else "error"
    )


# ----------------------------------------------------------------------------------------
# CI runs every test: .ci/run and suite.yml make a missing tool a failure.


def test_ci_requires_every_tool_and_sets_up_every_python(tmp_path):
    steps = _load("suite.yml")["jobs"]["test"]["steps"]
    step = next(step for step in steps if "bash .ci/run" in step.get("run", ""))
    assert step["env"]["COURSE_REQUIRE_ALL"] == "1"
    assert (
        'export COURSE_REQUIRE_ALL="${COURSE_REQUIRE_ALL:-1}"' in (REPO / ".ci" / "run").read_text()
    )
    # The Pythons step, run as GitHub runs it: Binder's and one older than requires-python.
    pythons = next(step for step in steps if step.get("id") == "pythons")
    output = tmp_path / "output"
    subprocess.run(
        ["bash", "-e", "-c", pythons["run"]], cwd=REPO, env={"GITHUB_OUTPUT": str(output),
        "PATH": "/usr/bin:/bin"}, check=True, timeout=30,
    )  # fmt: skip
    found = dict(line.split("=", 1) for line in output.read_text().splitlines())
    oldest, _ = _claimed_pythons()
    binder = (REPO / "binder" / "runtime.txt").read_text().strip().removeprefix("python-")
    assert found == {"binder": binder, "too_old": f"3.{int(oldest[2:]) - 1}"}
    setup = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python"))
    assert setup["with"]["python-version"].strip().splitlines() == [
        "${{ steps.pythons.outputs.too_old }}",
        "${{ steps.pythons.outputs.binder }}",
        "${{ inputs.python }}",  # last: the job's default python
    ]


def _fake_ci_machine(tmp_path, absent):
    """A copy of .ci/run, and a PATH where every command it looks for is, but ``absent``.

    No apt-get (so nothing is installed), and a ``make`` that prints the variables
    the tests would see instead of running them.
    """
    (tmp_path / ".ci").mkdir()
    shutil.copy(REPO / ".ci" / "run", tmp_path / ".ci" / "run")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for command in ("chromium", "bwrap", "sshd", "slurmctld", "slurmd", "sbatch", "munged"):
        if command != absent:
            (bin_dir / command).write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "make").write_text(
        '#!/bin/sh\necho "make $* COURSE_REQUIRE_ALL=$COURSE_REQUIRE_ALL"\n'
    )
    for tool in ("dirname", "sort", "id"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    for path in bin_dir.iterdir():
        path.chmod(0o755)
    return {"PATH": str(bin_dir), "HOME": str(tmp_path)}


def test_ci_run_stops_naming_a_package_it_could_not_install(tmp_path):
    env = _fake_ci_machine(tmp_path, absent="bwrap")
    run = [shutil.which("bash"), str(tmp_path / ".ci" / "run")]
    result = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no apt-get as root to install bubblewrap" in result.stdout
    assert "required by the tests: bubblewrap (no bwrap; tool bwrap)" in result.stderr
    assert "make test" not in result.stdout

    # Exempted, its tests skip (and say so); the others stay required.
    exempt = {**env, "COURSE_REQUIRE_BWRAP": "0"}
    result = subprocess.run(run, env=exempt, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bubblewrap missing (no bwrap): the tests that need bwrap will skip" in result.stdout
    assert result.stdout.splitlines()[-1] == "make test COURSE_REQUIRE_ALL=1"


def test_ci_run_runs_make_test_with_every_tool_required(tmp_path):
    env = _fake_ci_machine(tmp_path, absent=None)
    run = [shutil.which("bash"), str(tmp_path / ".ci" / "run")]
    result = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "make test COURSE_REQUIRE_ALL=1\n"
    assert result.stderr == ""
