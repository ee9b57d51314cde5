"""Tamper detection: each attack kind is named, ordinary code never is.

Unit tests read source strings and the lessons' references; the last tests
grade the fixture students of ``tests/fixtures/tamper_submissions.py``
through the real pipeline.
"""

import csv

import nbformat
import pytest
from fixtures import tamper_submissions
from grading_helpers import LESSON, NOTEBOOK, copy_course

from course_lib import grading
from course_lib.tamper import scan_notebook, scan_source, student_cells

# (source of one submitted cell, the reason grading must give for it)
ATTACKS = {
    "checker replaced": (
        "from course_lib import quiz\nquiz.is_correct = lambda *a, **k: True",
        "cell ex replaces course_lib.quiz.is_correct",
    ),
    "checker replaced through an alias": (
        "from course_lib import quiz as q\nq.check = print",
        "cell ex replaces course_lib.quiz.check",
    ),
    "checker imported by name, module reached by __import__": (
        "__import__('course_lib.quiz').quiz.is_correct = 1",
        "cell ex replaces course_lib.quiz.is_correct",
    ),
    "library function replaced": (
        "import numpy as np\nnp.array_equal = lambda a, b: True",
        "cell ex replaces numpy.array_equal",
    ),
    "library function deleted": ("import math\ndel math.isclose", "cell ex deletes math.isclose"),
    "setattr through an alias": (
        "import numpy.testing as nt\nput = setattr\nput(nt, 'assert_allclose', print)",
        "cell ex replaces numpy.testing.assert_allclose with setattr",
    ),
    "delattr": (
        "import math\ndelattr(math, 'isclose')",
        "cell ex deletes math.isclose with delattr",
    ),
    "third-party class": (
        "from sklearn.svm import SVC\nSVC.score = lambda self, X, y: 1.0",
        "cell ex replaces sklearn.svm.SVC.score",
    ),
    "builtins module": (
        "import builtins\nbuiltins.isinstance = lambda *a: True",
        "cell ex replaces builtins.isinstance",
    ),
    "builtin shadowed for the tests": (
        "def len(x):\n    return 3",
        "cell ex replaces the builtin len for every later cell",
    ),
    "patched inside a function called here": (
        "def cheat():\n    import numpy\n    numpy.allclose = lambda *a, **k: True\n\ncheat()",
        "cell ex replaces numpy.allclose",
    ),
    "exec of a constant string": (
        "exec('import numpy; numpy.isclose = None')",
        "cell ex replaces numpy.isclose",
    ),
    "module __dict__": (
        "import math\nvars(math)['isclose'] = max",
        "cell ex replaces entries of math through its __dict__",
    ),
    "sys.modules item": ("import sys\nsys.modules['numpy'] = None", "cell ex edits sys.modules"),
    "sys.modules method": (
        "import sys\nsys.modules.pop('course_lib.quiz')",
        "cell ex edits sys.modules",
    ),
    "AST transformer": (
        "ip = get_ipython()\nip.ast_transformers.append(Wrap())",
        "cell ex uses the IPython shell's ast_transformers (an IPython hook)",
    ),
    "input transformer": (
        "get_ipython().input_transformers_post.append(lambda lines: [])",
        "cell ex uses the IPython shell's input_transformers_post (an IPython hook)",
    ),
    "event": (
        "from IPython import get_ipython\nget_ipython().events.register('pre_run_cell', f)",
        "cell ex uses the IPython shell's events (an IPython hook)",
    ),
    "custom exception handler": (
        "get_ipython().set_custom_exc((AssertionError,), lambda *a, **k: None)",
        "cell ex uses the IPython shell's set_custom_exc (an IPython hook)",
    ),
    "showtraceback replaced": (
        "get_ipython().showtraceback = lambda *a, **k: None",
        "cell ex replaces the IPython shell's showtraceback (an IPython hook)",
    ),
    "run_cell replaced on the class": (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "InteractiveShell.run_cell = lambda *a, **k: None",
        "cell ex replaces IPython.core.interactiveshell.InteractiveShell.run_cell",
    ),
    "settrace": ("import sys\nsys.settrace(lambda *a: None)", "cell ex traces the interpreter"),
    "setprofile by name": (
        "from sys import setprofile\nsetprofile(print)",
        "cell ex profiles the interpreter with sys.setprofile",
    ),
    "ctypes": ("import ctypes\nctypes.pythonapi", "cell ex uses ctypes"),
    "ctypes by __import__": ("lib = __import__('ctypes')", "cell ex uses ctypes"),
    "gc reach": (
        "import gc\nfor holder in gc.get_referrers(answer):\n    pass",
        "cell ex reaches other code's objects with gc.get_referrers",
    ),
    "frames": (
        "import sys\ncaller = sys._getframe(1).f_globals",
        "cell ex reaches into other frames",
    ),
    "code replaced": (
        "from course_lib import quiz\nquiz.is_correct.__code__ = (lambda *a: True).__code__",
        "cell ex replaces the __code__ of quiz.is_correct",
    ),
    "agreeing answer object": (
        "class Anything:\n    def __eq__(self, other):\n        return True\n\n"
        "answer_x = Anything()",
        "cell ex answers with an object of its own class Anything, which overrides __eq__",
    ),
    "agreeing object returned by an exercise": (
        "class Like(dict):\n    def get(self, *a):\n        return 1\n"
        "    __contains__ = lambda s, k: True\n\n"
        "def busy_seconds(result):\n    return Like()",
        "cell ex answers with an object of its own class Like, which overrides __contains__, get",
    ),
    "quiz search in a loop": (
        "from course_lib import quiz\nfor guess in range(100):\n"
        "    if quiz.is_correct(guess, 'l1-copies:3a03'):\n        answer_copies = guess",
        "cell ex searches quiz answers by calling course_lib.quiz.is_correct in a loop",
    ),
    "quiz search in a comprehension": (
        "from course_lib.quiz import check\nfound = [a for a in 'abcd' if check(a, 'k:1')]",
        "cell ex searches quiz answers by calling course_lib.quiz.check in a loop",
    ),
    "quiz search with map": (
        "from course_lib import quiz\n"
        "hits = list(map(lambda a: quiz.is_correct(a, 'k:1'), range(9)))",
        "cell ex searches quiz answers by calling course_lib.quiz.is_correct in a loop",
    ),
    "the run-time check": (
        "import course_lib.guard\nget_ipython()._course_guard.seen.clear()",
        "cell ex reaches into the grading's run-time check",
    ),
    "quiz data file": (
        "import json\nfrom course_lib import quiz\nkeys = json.loads(quiz.DATA_FILE.read_text())",
        "cell ex reads quiz keys with course_lib.quiz.DATA_FILE",
    ),
    "quiz data by name": (
        "import json, pathlib, course_lib\n"
        "p = pathlib.Path(course_lib.__file__).parent / 'quiz_data.json'",
        "cell ex reads quiz keys from quiz_data.json",
    ),
    "quiz keys": (
        "from course_lib import quiz\nguess = quiz.key('l1-copies', 60)",
        "cell ex reads quiz keys with course_lib.quiz.key",
    ),
}

ORDINARY = {
    "plots": "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2])",
    "rcParams": "import matplotlib.pyplot as plt\nplt.rcParams['figure.dpi'] = 90",
    "pandas options": "import pandas as pd\npd.options.display.max_rows = 10",
    "px magics": "%%px\nimport numpy as np\nnp.random.seed(0)\nx = np.ones(3)",
    "line magics": "%matplotlib inline\n%px a = 1\n!ls",
    "view settings": "view = rc.load_balanced_view()\nview.retries = 1\nrc[:].use_cloudpickle()",
    "own objects": "class Box:\n    def __init__(self):\n        self.n = 1\n\nb = Box()\nb.n = 2",
    "own class with __eq__, not an answer": (
        "class Point:\n    def __eq__(self, other):\n        return self.x == other.x\n\n"
        "def helper():\n    p = Point()\n    return p.x"
    ),
    "quiz checked once": "from course_lib import quiz\nquiz.check(answer_copies, 'l1-copies:3a03')",
    "builtin names as values": "sum = 0\nlist_ = [1]\nmax = max(3, 4)",
    "environment": "import os\nos.environ['OMP_NUM_THREADS'] = '1'",
    "a function sent to engines patches engines only": (
        "def pretend(name):\n    import socket\n    socket.gethostname = lambda: name\n\n"
        "view.apply_sync(pretend, 'node-a')"
    ),
    "parameters shadow modules": "import numpy as np\n\ndef f(np):\n    np.x = 1\n    return np",
    "does not parse": "def broken(:\n    pass",
}


@pytest.mark.parametrize("kind", sorted(ATTACKS))
def test_each_attack_kind_is_named(kind):
    source, reason = ATTACKS[kind]
    found = scan_source(source, cell="ex")
    assert any(r.startswith(reason) for r in found), (kind, found)


@pytest.mark.parametrize("kind", sorted(ORDINARY))
def test_ordinary_code_is_not_flagged(kind):
    assert scan_source(ORDINARY[kind], cell="ex") == []


def _lessons():
    return sorted(p.name for p in (grading.REPO_ROOT / "solutions").iterdir() if p.is_dir())


@pytest.mark.parametrize("lesson", _lessons())
def test_references_are_never_flagged(lesson):
    solution = nbformat.read(grading.REPO_ROOT / "solutions" / lesson / f"{lesson}.ipynb", 4)
    release = nbformat.read(grading.REPO_ROOT / "lessons" / lesson / f"{lesson}.ipynb", 4)
    assert scan_notebook(solution, release) == []
    # Every unlocked cell read as the student's own (as if edited): still clean.
    assert scan_notebook(solution) == []
    assert scan_notebook(release) == []


def test_notebook_reasons_name_the_cell_and_follow_imports_across_cells():
    cells = [
        nbformat.v4.new_code_cell("from course_lib import quiz as q"),
        nbformat.v4.new_code_cell("q.is_correct = lambda *a: True"),
        nbformat.v4.new_code_cell("class Yes:\n    def __eq__(self, other):\n        return True"),
        nbformat.v4.new_code_cell("answer_copies = Yes()"),
    ]
    cells[1].metadata["nbgrader"] = {"grade_id": "ex-evaluate", "solution": True}
    nb = nbformat.v4.new_notebook(cells=cells)
    assert scan_notebook(nb) == [
        "cell ex-evaluate replaces course_lib.quiz.is_correct",
        "cell 4 answers with an object of its own class Yes, which overrides __eq__",
    ]


def test_locked_cells_and_cells_of_the_release_are_not_the_students():
    locked = nbformat.v4.new_code_cell("import sys\nsys.settrace(None)")
    locked.metadata["nbgrader"] = {"grade_id": "test-x", "grade": True, "locked": True}
    course = nbformat.v4.new_code_cell("import ctypes")
    mine = nbformat.v4.new_code_cell("x = 1")
    nb = nbformat.v4.new_notebook(cells=[locked, course, mine])
    release = nbformat.v4.new_notebook(cells=[course])
    assert student_cells(nb, release) == [("3", "x = 1")]
    assert scan_notebook(nb, release) == []
    assert scan_notebook(nb) == ["cell 2 uses ctypes (raw access to the interpreter's memory)"]


def test_bad_input_is_refused_with_its_type():
    with pytest.raises(TypeError, match="source must be a str, but got bytes"):
        scan_source(b"x = 1")
    with pytest.raises(TypeError, match="nb must be a notebook"):
        scan_notebook(["x = 1"])


# --------------------------------------------------------------------------
# Through the real pipeline: the fixture students of tests/fixtures/tamper_submissions.py
# --------------------------------------------------------------------------

ATTACKERS = sorted(s for s in tamper_submissions.ANSWERS if s != "ordinary")


@pytest.fixture(scope="module")
def graded_attacks(tmp_path_factory):
    """Every fixture student graded by ``grading.grade`` in a copy of the fixture course."""
    root = tmp_path_factory.mktemp("course")
    copy_course(root)
    submissions = tmp_path_factory.mktemp("submissions")
    release = root / "lessons" / LESSON / NOTEBOOK
    tamper_submissions.write_submissions(release, submissions)
    report = grading.grade(submissions, root, jobs=2, verbose=False)
    assert report.ok, report.problems
    return root, report


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("student", ATTACKERS)
def test_each_attack_is_flagged_with_its_reason_and_its_points_withheld(graded_attacks, student):
    root, report = graded_attacks
    outcome = report.outcome(student, LESSON)
    assert outcome.status == "graded", outcome.message
    expected = tamper_submissions.REASONS[student] + tamper_submissions.RUN_TIME.get(student, [])
    for reason in expected:
        assert any(reason in note for note in outcome.notes), (reason, outcome.notes)
    assert outcome.flagged and outcome.score == 0 < outcome.max_score
    assert "withheld" in outcome.message
    with open(root / "grades.csv", newline="") as file:
        row = next(r for r in csv.DictReader(file) if r["student"] == student)
    assert float(row["score"]) == 0 and all(reason in row["message"] for reason in expected)
    assert f"{student}" in report.table() and "flagged" in report.table()
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / '.nbgrader' / 'gradebook.db'}") as gb:
        submission = gb.find_submission(LESSON, student)
        assert all(nb.flagged for nb in submission.notebooks)
        assert submission.needs_manual_grade  # listed by the formgrader


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_ordinary_code_and_a_printed_warning_keep_full_marks(graded_attacks):
    _, report = graded_attacks
    outcome = report.outcome("ordinary", LESSON)
    assert outcome.status == "graded", outcome.message
    assert not outcome.flagged and outcome.score == outcome.max_score > 0, outcome.message
    assert outcome.notes == ["test-squares printed warnings on stderr (they cost no points)"]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_hidden_test_line_printed_by_the_student_is_removed_from_feedback(graded_attacks):
    root, report = graded_attacks
    outcome = report.outcome("obfuscated", LESSON)
    assert any("line(s) of a hidden test: removed" in note for note in outcome.notes)
    html = (root / "feedback" / "obfuscated" / LESSON / f"{LESSON}.html").read_text()
    assert tamper_submissions.HIDDEN_LINE_PRINTED not in html
    assert "a line of a hidden test was removed here" in html
