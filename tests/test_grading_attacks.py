"""A class that cheats, graded for real: each attack gains nothing beyond its honest parts.

The attack fixture lesson (``tests/fixtures/attack_course``, four exercises and a
pop quiz, no cluster) and its class (``tests/fixtures/attack_submissions``, built
by ``tests/fixtures/build_attack_fixtures.py`` from the readable sources in
``attack_submissions/_sources/``) are graded once, with the sandbox, two at a
time. Each source says which test cells its honest work passes (``# honest:``):
that is its exact expected score, per cell. The class holds one submission per
kind of attack written by reading ``course_lib`` (reaching the checker's objects,
a thread that rebinds answers while tests run, a hidden test's values read from
globals or from the caller's frames, forged kernel messages, rewritten records,
numbers that always agree, disguised IPython callbacks, lenient copies of what
tests compare with, ``sys.modules``/``__spec__`` pointed at lenient copies,
replies built to exhaust the receiver, answers that are not data, a kernel killed
or hung mid-test), honest submissions in unusual forms (full marks), partial work,
the reference (full marks) and the untouched release (zero).

A control runs the same attacks with the tests in the student's own kernel, as
nbgrader does: there they win, so the fixtures are real attacks and the grades
above are the two-kernel design's doing.
"""

import ast
import csv
import json
import re
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest
from grading_helpers import FIXTURES
from nbclient import NotebookClient

from course_lib import grading
from course_lib.grading.sandbox import sandbox_problem

sys.path.insert(0, str(FIXTURES))
from build_attack_fixtures import LESSON, SOURCES, read_source, student_notebook  # noqa: E402

from course_lib.grading.notebooks import grade_id as grade_id_of
from course_lib.grading.notebooks import nbgrader_meta

COURSE = FIXTURES / "attack_course"
SUBMISSIONS = FIXTURES / "attack_submissions"
SOLUTION = COURSE / "solutions" / LESSON / f"{LESSON}.ipynb"
#: Honest submissions that must keep full marks.
FULL_MARKS = ("reference", "forms", "helpers", "copycat")
#: The ten kinds of attack that won full marks when tests shared the student's kernel.
ISSUE_KINDS = (
    "reach_checker",
    "thread_rebind",
    "read_globals",
    "forge_iopub",
    "rewrite_records",
    "number_tricks",
    "ipython_events",
    "lenient_rebind",
    "frame_walk",
    "spec_swap",
)
#: Kinds of our own: replies built to exhaust, answers not data, a dead or hung kernel.
OWN_KINDS = ("exhaust", "not_data", "killer", "hanger")
#: Modules whose classes a checker may hold: decoded data and the test's own tools.
DATA_MODULES = re.compile(r"^(builtins|numpy|scipy|sklearn|datetime|collections)(\.|$)")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


def _test_points():
    """``{test grade_id: points}`` of the lesson."""
    nb = nbformat.read(SOLUTION, 4)
    points = {}
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        if meta.get("grade") and not meta.get("solution"):
            points[meta["grade_id"]] = float(meta["points"])
    return points


POINTS = _test_points()


def students():
    """Every student of the class: the built ones and those with a source."""
    return sorted(p.name for p in SUBMISSIONS.iterdir() if p.is_dir() and p.name[0] != "_")


def honest_cells(student):
    """The test cells a student's honest work passes (its source's ``# honest:`` line)."""
    if student == "reference":
        return set(POINTS)
    if student == "blank":
        return set()
    if student == "copycat":  # a copy of a classmate's notebook
        student = "forms"
    return set(read_source(SOURCES / f"{student}.py")[0])


def notebook_of(student):
    return SUBMISSIONS / student / LESSON / f"{LESSON}.ipynb"


def test_the_class_holds_every_kind():
    found = set(students())
    assert set(ISSUE_KINDS) | set(OWN_KINDS) | set(FULL_MARKS) | {"blank", "partial"} <= found
    for student in found:
        assert honest_cells(student) <= set(POINTS), student
    # Each attack also has honest parts, and loses something: its score is a precise claim.
    for kind in ISSUE_KINDS + OWN_KINDS:
        assert set() < honest_cells(kind) < set(POINTS), kind


def test_the_fixtures_are_up_to_date(tmp_path):
    """The notebooks are what the build script makes of the sources."""
    released = nbformat.read(COURSE / "lessons" / LESSON / f"{LESSON}.ipynb", 4)
    for path in sorted(SOURCES.glob("*.py")):
        built = student_notebook(released, read_source(path)[1], path.stem)
        on_disk = nbformat.read(notebook_of(path.stem), 4)
        assert [c.source for c in built.cells] == [c.source for c in on_disk.cells], path.stem


@pytest.fixture(scope="module")
def class_graded(tmp_path_factory):
    """The whole class graded once, sandboxed, two at a time."""
    problem = sandbox_problem()
    if problem is not None:
        pytest.fail(f"the attack tests need the sandbox: {problem}")
    root = tmp_path_factory.mktemp("course")
    leftovers = shutil.ignore_patterns(".nbgrader", "autograded", "feedback", "submitted", "*.csv")
    shutil.copytree(COURSE, root, dirs_exist_ok=True, ignore=leftovers)
    submissions = tmp_path_factory.mktemp("submissions")
    shutil.copytree(
        SUBMISSIONS, submissions, dirs_exist_ok=True, ignore=shutil.ignore_patterns("_sources")
    )
    report = grading.grade(submissions, root, jobs=2, timeout=90, verbose=False)
    print(report.table())
    return root, report


def test_the_class_is_graded_without_a_pipeline_error(class_graded):
    _, report = class_graded
    assert report.ok, report.problems
    for student in students():
        outcome = report.outcome(student, LESSON)
        assert outcome is not None and outcome.status == "graded", (student, outcome)
        assert outcome.sandboxed, student


@pytest.mark.parametrize("student", students())
def test_each_student_gets_exactly_its_honest_points(class_graded, student):
    _, report = class_graded
    outcome = report.outcome(student, LESSON)
    honest = honest_cells(student)
    got = {gid: outcome.cells.get(gid, (None, None))[0] for gid in POINTS}
    want = {gid: (POINTS[gid] if gid in honest else 0.0) for gid in POINTS}
    assert got == want, (student, outcome.failures, outcome.message)
    assert outcome.score == sum(want.values()), student
    assert outcome.max_score == sum(POINTS.values())


def test_honest_work_in_any_form_keeps_full_marks(class_graded):
    _, report = class_graded
    for student in FULL_MARKS:
        outcome = report.outcome(student, LESSON)
        assert outcome.score == outcome.max_score == sum(POINTS.values()), (student, outcome)
    assert report.outcome("blank", LESSON).score == 0


def test_a_value_that_is_not_data_fails_its_test_naming_its_type(class_graded):
    """The row's message (grades.csv) says, per failed test, what crossed instead of data."""
    _, report = class_graded
    with open(report.csv_path, newline="") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    message = rows["not_data"]["message"]
    for kind in ("generator", "mappingproxy", "function"):
        assert kind in message, message
    assert rows["not_data"]["score"] == f"{report.outcome('not_data', LESSON).score:g}"


def test_a_quiz_key_can_be_tried_by_hand_or_by_code():
    """What grading does not guarantee: a quiz's key ships with course_lib, so trying
    every option in the notebook finds the answer; the on-the-spot check is practice."""
    from course_lib import quiz

    assert [guess for guess in range(100) if quiz.is_correct(guess, "l4-halving")] == [2]


def test_a_reply_built_to_exhaust_the_checker_fails_only_its_own_tests(class_graded):
    _, report = class_graded
    outcome = report.outcome("exhaust", LESSON)
    assert outcome.cells["test-squares"][0] == POINTS["test-squares"]
    assert outcome.cells["test-quiz-halving"][0] == POINTS["test-quiz-halving"]
    assert len(outcome.failures) == 3, outcome.failures


def _log(root, student, suffix):
    path = root / ".nbgrader" / "logs" / LESSON / f"{student}{suffix}"
    assert path.is_file(), f"grading wrote no {path.name} for {student}"
    return path


def _strings(value):
    """Every string in a decoded JSON value (keys too)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _classes_defined_in(student):
    """Names of the classes a submission's code defines (``class X`` or ``type("X", ...)``)."""
    names = set()
    for cell in nbformat.read(notebook_of(student), 4).cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                names.add(node.name)
            elif (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "type"
                and len(node.args) == 3
                and isinstance(node.args[0], ast.Constant)
            ):
                names.add(node.args[0].value)
    return names


def test_the_checker_held_only_data_types(class_graded):
    """No object of a class a submission defined ever lived in a checker kernel."""
    root, _ = class_graded
    defined = set().union(*(_classes_defined_in(s) for s in students()))
    assert {"Zero", "Agreeing", "EqualToAny", "AnyAnswer", "_Answer"} <= defined
    for student in students():
        held = set(_strings(json.loads(_log(root, student, ".checker-types.json").read_text())))
        assert held, student
        for name in held:
            module, _, qualname = name.rpartition(".")
            assert module != "__main__", (student, name)
            assert qualname.split(".")[-1] not in defined, (student, name)
        # The decoded answers of the submissions are among them, as data types only.
        answers = {n for n in held if DATA_MODULES.match(n)}
        assert answers, (student, sorted(held))


def test_no_hidden_test_reached_a_student_kernel(class_graded):
    """Grep everything sent to each student kernel for the hidden tests' lines."""
    root, _ = class_graded
    hidden = grading.hidden_test_lines(SOLUTION)
    assert len(hidden) >= 10
    for student in students():
        own = {
            line.strip()
            for cell in nbformat.read(notebook_of(student), 4).cells
            for line in cell.source.splitlines()
        }
        secret = hidden - own
        lines = _log(root, student, ".sent.jsonl").read_text().splitlines()
        assert lines, student
        for line in lines:
            text = "\n".join([line, *_strings(json.loads(line))])
            leaked = [h for h in secret if h in text]
            assert not leaked, (student, leaked)


# -- the control: the same attacks with the tests in the student's own kernel ---------


def _one_kernel(student, folder):
    """Run a submission with the lesson's own test cells (hidden parts too) in its
    kernel, as nbgrader does; the points of the test cells that raised nothing."""
    solution = {grade_id_of(c): c for c in nbformat.read(SOLUTION, 4).cells}
    nb = nbformat.read(notebook_of(student), 4)
    for cell in nb.cells:
        grade_id = grade_id_of(cell)
        if grade_id in POINTS:
            cell.source = solution[grade_id].source
    folder.mkdir()
    NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(folder)}},
    ).execute()
    passed = set()
    for cell in nb.cells:
        grade_id = grade_id_of(cell)
        if grade_id in POINTS and not any(o.output_type == "error" for o in cell.outputs):
            passed.add(grade_id)
    return passed


def test_in_one_kernel_the_attacks_win(tmp_path):
    """Control: with tests in the student's kernel, the attacks pass what they did not
    solve; only the number tricks lose there too (course_lib._wire reduces their
    numbers to plain ones in the notebook as well)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = pool.map(lambda s: _one_kernel(s, tmp_path / s), ISSUE_KINDS)
        passed = dict(zip(ISSUE_KINDS, runs, strict=True))
    for kind in ISSUE_KINDS:
        print(f"{kind}: {sum(POINTS[g] for g in passed[kind]):g}/{sum(POINTS.values()):g}")
    for kind in ISSUE_KINDS:
        if kind == "number_tricks":
            assert passed[kind] == honest_cells(kind), passed[kind]
        else:
            assert passed[kind] > honest_cells(kind), (kind, passed[kind])
