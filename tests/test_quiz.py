import subprocess
import sys

import numpy as np
import pytest

from course_lib.quiz import check, is_correct, key, normalize


def test_equivalent_answers_match():
    k = key("algo", "AdaBoost")
    for answer in ["adaboost", "  ADABOOST ", "AdaBoost"]:
        assert is_correct(answer, k)
    assert not is_correct("random forest", k)


def test_numbers_match_whatever_their_type():
    k = key("copies", 60)
    assert is_correct(60.0, k)
    assert is_correct(np.int64(60), k)
    assert is_correct(np.float32(60), k)
    assert not is_correct(61, k)
    assert not is_correct("sixty", k)


def test_choices_match_in_any_order():
    k = key("parallel", ["random forests", "grid search"])
    assert is_correct({"Grid Search", "Random Forests"}, k)
    assert not is_correct(["grid search"], k)


def test_several_accepted_answers():
    keys = (key("q", 2), key("q", "two"))
    assert is_correct("Two", *keys)
    assert is_correct(2, *keys)


def test_key_does_not_contain_the_answer():
    k = key("secret", "gradient boosting")
    assert "gradient" not in k and "boosting" not in k
    assert k.startswith("secret:")
    # the question salts the hash: the same answer to another question differs
    assert key("other", "gradient boosting").split(":")[1] != k.split(":")[1]


def test_check_prints_feedback(capsys):
    k = key("copies", 27)
    assert check(27, k) is True
    assert "Correct" in capsys.readouterr().out
    assert check(28, k, hint="folds times settings") is False
    assert "folds times settings" in capsys.readouterr().out
    assert check(None, k) is False
    assert "No answer yet" in capsys.readouterr().out


def test_bad_inputs_are_named():
    with pytest.raises(TypeError, match="object"):
        normalize(object())
    with pytest.raises(ValueError, match="'has space'"):
        key("has space", 1)
    with pytest.raises(ValueError, match="not a quiz key"):
        is_correct(1, "no-colon")
    assert not is_correct(lambda: 1, key("q", 1))


def test_command_line_prints_the_key():
    out = subprocess.run(
        [sys.executable, "-m", "course_lib.quiz", "copies", "60"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == key("copies", 60)


def test_explanation_opens_only_with_the_right_answer(capsys):
    from course_lib.quiz import seal

    k = key("copies", 60)
    sealed = seal("copies", 60, "Five folds times twelve settings.")
    assert "twelve" not in sealed
    check(60.0, k, explanation=sealed)
    assert "Five folds times twelve settings." in capsys.readouterr().out
    check(59, k, explanation=sealed)
    assert "twelve" not in capsys.readouterr().out
