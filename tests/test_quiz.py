"""course_lib.quiz, and every pop quiz of the lessons with its graded twin.

No kernel: each quiz cell and its twin (the locked test cell that grades it)
run here with ``exec``, in a namespace that holds ``quiz`` as the lessons'
setup cells import it.
"""

import contextlib
import decimal
import fractions
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from course_lib import quiz
from course_lib.grading.notebooks import nbgrader_meta
from course_lib.quiz import check, is_correct, key, normalize, seal

ROOT = Path(__file__).resolve().parents[1]
REPLACE = "Replace ... with your answer, then run this cell again."


# --------------------------------------------------------------------------
# normalize, key, is_correct: the one normalisation
# --------------------------------------------------------------------------


def test_equivalent_answers_match():
    k = key("algo", "AdaBoost")
    for answer in ["adaboost", "  ADABOOST ", "AdaBoost", np.str_("adaboost")]:
        assert is_correct(answer, k)
    assert not is_correct("random forest", k)


@pytest.mark.parametrize(
    "answer",
    [
        60,
        60.0,
        np.int64(60),
        np.int8(60),
        np.uint16(60),
        np.float32(60),
        np.float64(60.0),
        fractions.Fraction(120, 2),
        decimal.Decimal("60.0"),
        "60",
        " 60 ",
    ],
)
def test_any_form_of_a_whole_number_matches(answer):
    assert is_correct(answer, key("copies", 60))


@pytest.mark.parametrize("answer", [59, 60.5, np.float64(59.999), "sixty", True])
def test_other_numbers_do_not_match(answer):
    assert not is_correct(answer, key("copies", 60))


@pytest.mark.parametrize(
    "answer",
    [
        {"a", "c"},
        ["C", "a"],
        ("a", "c"),
        frozenset("ac"),
        ["a", "c", "a"],
        np.array(["c", "a"]),
        {"a": 1, "c": 2}.keys(),
        "a,c",
    ],
)
def test_any_collection_of_the_choices_matches(answer):
    assert is_correct(answer, key("parallel", ["a", "c"]))


def test_choices_must_all_be_there():
    k = key("parallel", ["random forests", "grid search"])
    assert is_correct({"Grid Search", "Random Forests"}, k)
    assert not is_correct(["grid search"], k)
    assert not is_correct(["grid search", "random forests", "adaboost"], k)


@pytest.mark.parametrize(
    "answer", [None, ..., print, {"a": 1}, b"a", (letter for letter in "ac"), object()]
)
def test_answers_of_other_types_are_wrong_not_errors(answer):
    assert not is_correct(answer, key("parallel", ["a", "c"]))
    with pytest.raises(TypeError, match="must be a string, a number, or a list/set"):
        normalize(answer)


def test_a_str_subclass_cannot_change_what_is_hashed():
    class Sneaky(str):
        def strip(self, *args):
            return "60"

        def casefold(self):
            return "60"

    assert not is_correct(Sneaky("61"), key("copies", 60))


def test_several_accepted_answers():
    keys = (key("q", 2), key("q", "two"))
    assert is_correct("Two", *keys)
    assert is_correct(2, *keys)
    assert not is_correct(3, *keys)


def test_key_does_not_contain_the_answer():
    k = key("secret", "gradient boosting")
    assert "gradient" not in k and "boosting" not in k
    assert k.startswith("secret:")
    # the question salts the hash: the same answer to another question differs
    assert key("other", "gradient boosting").split(":")[1] != k.split(":")[1]


# --------------------------------------------------------------------------
# check: one printed line, nothing returned
# --------------------------------------------------------------------------


def test_check_prints_one_line_and_returns_nothing(capsys):
    k = key("copies", 27)
    assert check(27, k) is None
    assert capsys.readouterr().out == "Correct!\n"
    assert check(28, k, hint="folds times settings") is None
    assert capsys.readouterr().out == "Not quite. Hint: folds times settings\n"
    for untouched in (..., None):
        check(untouched, k)
        assert capsys.readouterr().out == f"{REPLACE}\n"


@pytest.mark.parametrize(
    "wrong, words",
    [({"a": 27}, "{'a': 27} (of type dict)"), (print, "print"), (b"27", "(of type bytes)")],
)
def test_check_refuses_a_plainly_wrong_type_naming_it(wrong, words, capsys):
    with pytest.raises(TypeError, match=re.escape(words)):
        check(wrong, key("copies", 27))
    assert capsys.readouterr().out == ""  # no verdict printed
    assert is_correct(wrong, key("copies", 27)) is False  # graded tests stay silent


def test_two_checks_in_one_cell_both_show(capsys):
    check(60, key("naive", 60), label="Question 1")
    check(2, key("mapped", 1), label="Question 2", hint="Whose memory is the page cache?")
    assert capsys.readouterr().out.splitlines() == [
        "Question 1: Correct!",
        "Question 2: Not quite. Hint: Whose memory is the page cache?",
    ]


def test_explanation_opens_only_with_the_right_answer(capsys):
    k = key("copies", 60)
    sealed = seal("copies", 60, "Five folds times twelve settings.")
    assert "twelve" not in sealed
    check(60.0, k, explanation=sealed)
    assert capsys.readouterr().out == "Correct! Five folds times twelve settings.\n"
    check(59, k, explanation=sealed)
    assert "twelve" not in capsys.readouterr().out


def test_a_quiz_id_brings_keys_hint_explanation_and_label(tmp_path, monkeypatch, capsys):
    data = tmp_path / "quiz_data.json"
    entry = {
        "keys": [key("t-q", 4)],
        "hint": "Divide by 3 twice.",
        "explanation": seal("t-q", 4, "12, then 4."),
        "label": "Question 1",
    }
    data.write_text(json.dumps({"t-q": entry}))
    monkeypatch.setattr(quiz, "DATA_FILE", data)
    check(4.0, "t-q")
    check(5, "t-q")
    assert capsys.readouterr().out.splitlines() == [
        "Question 1: Correct! 12, then 4.",
        "Question 1: Not quite. Hint: Divide by 3 twice.",
    ]
    assert is_correct(np.int32(4), "t-q") and not is_correct(5, "t-q")


# --------------------------------------------------------------------------
# Bad input from a quiz's author: refused at the door, naming the value
# --------------------------------------------------------------------------

K = key("copies", 60)

BAD_INPUT = [
    # (call, error type, words of the message)
    (lambda: seal("q", 60, 42), TypeError, "explanation must be a str, but got 42"),
    (lambda: seal("q", 60, None), TypeError, "explanation must be a str, but got None"),
    (lambda: seal(7, 60, "why"), TypeError, "question must be a str, but got 7"),
    (lambda: seal("has space", 60, "why"), ValueError, "'has space'"),
    (lambda: seal("q", print, "why"), TypeError, "<built-in function print>"),
    (lambda: seal("q", {"a": 1}, "why"), TypeError, "{'a': 1}"),
    (lambda: key("has space", 1), ValueError, "'has space'"),
    (lambda: key(None, 1), TypeError, "question must be a str, but got None"),
    (lambda: key("q", object), TypeError, "<class 'object'>"),
    (lambda: is_correct(1), ValueError, "at least one quiz key or quiz id"),
    (lambda: is_correct(1, "no-colon-unknown-id"), ValueError, "'no-colon-unknown-id'"),
    (lambda: is_correct(1, "q:123"), ValueError, "'q:123' is neither a quiz key"),
    (lambda: is_correct(1, 42), TypeError, "got 42 (of type int)"),
    (lambda: check(1), ValueError, "at least one quiz key or quiz id"),
    (lambda: check(1, K.encode()), TypeError, "(of type bytes)"),
    (lambda: check(1, "q:not hex"), ValueError, "'q:not hex'"),
    (lambda: check(1, "l0-unknown"), ValueError, "'l0-unknown' is not a quiz id"),
    (lambda: check(1, K, hint=3), TypeError, "hint must be a str or None, but got 3"),
    (lambda: check(1, K, label=["Q1"]), TypeError, "label must be a str or None, but got ['Q1']"),
    (lambda: check(1, K, explanation=b"xx"), TypeError, "explanation must be a str or None"),
    (lambda: check(1, K, explanation="not base64!"), ValueError, "'not base64!'"),
]


@pytest.mark.parametrize("call, error, words", BAD_INPUT)
def test_bad_input_is_refused_naming_the_value(call, error, words, capsys):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)
    assert capsys.readouterr().out == "", "nothing is printed before the error"


# --------------------------------------------------------------------------
# The command line of quiz authors
# --------------------------------------------------------------------------


def test_command_line_prints_the_key():
    out = subprocess.run(
        [sys.executable, "-m", "course_lib.quiz", "copies", "60"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == key("copies", 60)


def test_command_line_saves_an_entry_and_never_replaces_one_unasked(tmp_path, monkeypatch, capsys):
    data = tmp_path / "quiz_data.json"
    data.write_text(json.dumps({"old": {"keys": [key("old", 1)]}}))
    monkeypatch.setattr(quiz, "DATA_FILE", data)
    quiz.main(["t-q", "[1, 2]", "--hint", "two of them", "--explain", "1 and 2.", "--save"])
    saved = json.loads(data.read_text())
    assert set(saved) == {"old", "t-q"}
    assert saved["t-q"]["hint"] == "two of them"
    capsys.readouterr()
    check([2, 1], "t-q")
    assert capsys.readouterr().out == "Correct! 1 and 2.\n"
    before = data.read_text()
    with pytest.raises(SystemExit):
        quiz.main(["t-q", "3", "--save"])
    assert "--replace" in capsys.readouterr().err
    assert data.read_text() == before
    quiz.main(["t-q", "3", "--save", "--replace"])
    assert json.loads(data.read_text())["t-q"] == {"keys": [key("t-q", 3)]}
    with pytest.raises(SystemExit):
        quiz.main(["bad id", "3", "--save"])
    assert "'bad id'" in capsys.readouterr().err


# --------------------------------------------------------------------------
# Every quiz of every lesson, with its graded twin
# --------------------------------------------------------------------------


def _cells(folder):
    """{(lesson, grade_id): source} of the quiz cells and their twins in ``folder``."""
    cells = {}
    for path in sorted((ROOT / folder).glob("*/*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            grade_id = nbgrader_meta(cell).get("grade_id", "")
            if grade_id.startswith(("quiz-", "test-quiz-")):
                cells[path.parent.name, grade_id] = "".join(cell["source"])
    return cells


SOLUTIONS = _cells("solutions")
RELEASE = _cells("lessons")
QUIZZES = sorted(cell for cell in SOLUTIONS if cell[1].startswith("quiz-"))


def _run(source, namespace):
    """Run a cell's source; return what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(source, "<cell>", "exec"), namespace)
    return out.getvalue()


def _answers(lesson, grade_id):
    """The reference answers of a quiz: {variable: value}."""
    region = SOLUTIONS[lesson, grade_id].split("### BEGIN SOLUTION")[1]
    region = region.split("### END SOLUTION")[0]
    namespace = {}
    exec(region, namespace)
    return {name: value for name, value in namespace.items() if name.startswith("answer_")}


def _check_part(lesson, grade_id):
    """What the quiz cell runs after its answers: the on-the-spot check(s)."""
    return SOLUTIONS[lesson, grade_id].split("### END SOLUTION")[1]


def _twin_passes(lesson, grade_id, answers):
    """Whether the quiz's graded test cell passes with ``answers`` in the notebook."""
    twin = SOLUTIONS[lesson, "test-" + grade_id]
    try:
        _run_with_answers(twin, answers)
    except AssertionError:
        return False
    return True


def _run_with_answers(source, answers):
    """Run a test cell with ``answers`` in ``__main__``, where the handle reads them."""
    import __main__

    for name, value in answers.items():
        setattr(__main__, name, value)
    try:
        return _run(source, {})
    finally:
        for name in answers:
            delattr(__main__, name)


def _on_the_spot(lesson, grade_id, answers):
    """The lines the quiz cell prints, and whether every one says Correct."""
    lines = _run(_check_part(lesson, grade_id), {"quiz": quiz, **answers}).splitlines()
    assert len(lines) == len(answers), lines
    return lines, all("Correct!" in line for line in lines)


def _fair_forms(value):
    """Other ways a student may write a right answer."""
    if isinstance(value, int):
        return [
            np.int64(value),
            np.int32(value),
            float(value),
            np.float64(value),
            fractions.Fraction(value),
            decimal.Decimal(value),
        ]
    if isinstance(value, str):
        return [value.upper(), f"  {value} ", np.str_(value)]
    if isinstance(value, (set, frozenset)):
        letters = sorted(value)
        return [
            list(letters),
            tuple(reversed(letters)),
            frozenset(letters),
            [letter.upper() for letter in letters],
            np.array(letters),
            letters + letters[:1],
        ]
    raise AssertionError(f"no fair forms for {value!r}")


def _wrong_forms(value):
    if isinstance(value, int):
        return [value + 1, value - 1.5, str(value + 1), None, ...]
    if isinstance(value, str):
        return [value + "x", "", None]
    letters = sorted(value)
    return [letters[:-1], letters + ["z"], "".join(letters), None, ...]


def test_every_quiz_has_one_entry_and_its_graded_check_the_same_question():
    data = json.loads(quiz.DATA_FILE.read_text())
    checked = set()
    for lesson, grade_id in QUIZZES:
        asked = re.findall(r'quiz\.check\((\w+), "([\w.-]+)"\)', _check_part(lesson, grade_id))
        graded = re.findall(
            r'check_quiz\("(\w+)", "([\w.-]+)"[,)]', SOLUTIONS[lesson, "test-" + grade_id]
        )
        assert asked == graded, grade_id
        assert all(qid in data for _, qid in asked), grade_id
        checked.update(qid for _, qid in asked)
    assert checked == set(data), "entries of quiz_data.json that no lesson uses"


@pytest.mark.parametrize("lesson, grade_id", QUIZZES)
def test_reference_answer_passes_the_check_and_the_twin(lesson, grade_id):
    answers = _answers(lesson, grade_id)
    lines, correct = _on_the_spot(lesson, grade_id, answers)
    assert correct, lines
    # the sealed explanation opens: more than a bare "Correct!"
    assert all(len(line.split("Correct!")[1].strip()) > 20 for line in lines), lines
    assert _twin_passes(lesson, grade_id, answers)


@pytest.mark.parametrize("lesson, grade_id", QUIZZES)
def test_check_and_twin_never_disagree(lesson, grade_id):
    reference = _answers(lesson, grade_id)
    for name, value in reference.items():
        for form, right in [(f, True) for f in _fair_forms(value)] + [
            (f, False) for f in _wrong_forms(value)
        ]:
            answers = {**reference, name: form}
            lines, correct = _on_the_spot(lesson, grade_id, answers)
            assert correct == right, (name, form, lines)
            assert _twin_passes(lesson, grade_id, answers) == right, (name, form)


@pytest.mark.parametrize("lesson, grade_id", QUIZZES)
def test_untouched_release_prints_one_line_and_its_twin_says_what_to_do(lesson, grade_id):
    cell = RELEASE[lesson, grade_id]
    assert "NotImplementedError" not in cell and "SOLUTION" not in cell
    assert len(cell.splitlines()) <= 4, "a quiz cell is short"
    namespace = {"quiz": quiz}
    lines = _run(cell, namespace).splitlines()
    assert lines and all(line.endswith(REPLACE) for line in lines), lines
    twin = RELEASE[lesson, "test-" + grade_id]
    assert "HIDDEN" not in twin and not re.search(r"[0-9a-f]{20}", twin), "no key in the release"
    with pytest.raises(AssertionError, match=r"[Rr]eplace (each )?\.\.\."):
        _run_with_answers(twin, {name: ... for name in _answers(lesson, grade_id)})
    # the reference, pasted into the released cell, passes the release's twin too
    _run_with_answers(twin, _answers(lesson, grade_id))
