"""Pop quizzes checked on the spot, without the answer readable in the lesson.

An author stores the *key* of the right answer, a salted hash, in the lesson.
The student writes an answer in a cell; :func:`check` says at once whether it
matches, and the graded test calls :func:`is_correct` on the same answer.

Answers are normalised before hashing, so that ``"AdaBoost "`` and
``"adaboost"`` match, ``60`` and ``60.0`` match, and the choices of a
"select all that apply" question match in any order.

Examples
--------
The author computes the key once (or runs ``python -m course_lib.quiz``):

>>> from course_lib.quiz import check, is_correct, key
>>> k = key("copies", 60)
>>> k
'copies:bfb58d6b642b48d6c77e'

The lesson keeps only the key; the student's answer is checked against it:

>>> check(60.0, k)
Correct!
True
>>> is_correct(59, k)
False
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import numbers
import re

__all__ = ["check", "is_correct", "key", "normalize", "seal"]

_DIGEST_CHARS = 20


def normalize(answer):
    """The canonical text of an answer, the one that is hashed.

    Strings are case-folded with spaces collapsed; whole numbers lose their
    ``.0``; other numbers keep 6 significant digits; a list, tuple or set is a
    set of choices: its normalised items, sorted and comma-separated.

    Examples
    --------
    >>> normalize("  Random   Forests ")
    'random forests'
    >>> normalize(3.0), normalize(0.1234567)
    ('3', '0.123457')
    >>> normalize({"b", "A"})
    'a,b'
    """
    if isinstance(answer, bool):
        return "true" if answer else "false"
    if isinstance(answer, numbers.Integral):
        return str(int(answer))
    if isinstance(answer, numbers.Real):
        value = float(answer)
        if value.is_integer():
            return str(int(value))
        return format(value, ".6g")
    if isinstance(answer, str):
        return re.sub(r"\s+", " ", answer.strip().casefold())
    if isinstance(answer, (list, tuple, set, frozenset)):
        return ",".join(sorted(normalize(item) for item in answer))
    raise TypeError(
        f"A quiz answer must be a string, a number, or a list/set of them, but got "
        f"{answer!r} (of type {type(answer).__name__})."
    )


def key(question, answer):
    """The key of ``answer`` to ``question``: what a lesson stores.

    Parameters
    ----------
    question : str
        A short identifier, unique in the course (it salts the hash).
    answer : str, number, or list/set of them
        The right answer.

    Returns
    -------
    str
        ``"<question>:<hex digest>"``.
    """
    if not isinstance(question, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", question):
        raise ValueError(
            f"question must be a short identifier of letters, digits, '_', '.' or '-', "
            f"but got {question!r}."
        )
    text = f"{question}\x00{normalize(answer)}"
    return f"{question}:{hashlib.sha256(text.encode()).hexdigest()[:_DIGEST_CHARS]}"


def _xor_with_answer(question, answer, data):
    """XOR ``data`` with a keystream derived from the normalised answer."""
    seed = f"{question}\x01{normalize(answer)}".encode()
    blocks = (
        hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range(len(data) // 32 + 1)
    )
    stream = b"".join(blocks)
    return bytes(byte ^ mask for byte, mask in zip(data, stream[: len(data)], strict=True))


def seal(question, answer, explanation):
    """Encrypt ``explanation`` with the right answer: only that answer opens it.

    A lesson stores the sealed text; :func:`check` prints it once the student
    has found the answer, so the release never shows why before it is solved.

    Examples
    --------
    >>> sealed = seal("copies", 60, "5 folds x 12 settings.")
    >>> "folds" in sealed
    False
    >>> check(60, key("copies", 60), explanation=sealed)
    Correct! 5 folds x 12 settings.
    True
    """
    return base64.b64encode(_xor_with_answer(question, answer, explanation.encode())).decode()


def _unseal(question, answer, sealed):
    """The explanation, or "" when it was sealed with another accepted answer."""
    try:
        return _xor_with_answer(question, answer, base64.b64decode(sealed)).decode()
    except UnicodeDecodeError:
        return ""


def _question_of(answer_key):
    if not isinstance(answer_key, str) or answer_key.count(":") != 1:
        raise ValueError(f"{answer_key!r} is not a quiz key made by course_lib.quiz.key.")
    return answer_key.split(":")[0]


def is_correct(answer, *keys):
    """Whether ``answer`` matches one of ``keys``. Silent; for graded tests.

    An answer of the wrong type (``None``, a function, ...) is simply wrong.
    """
    if not keys:
        raise ValueError("is_correct needs at least one key.")
    for answer_key in keys:
        try:
            if key(_question_of(answer_key), answer) == answer_key:
                return True
        except TypeError:
            return False
    return False


def check(answer, *keys, hint=None, explanation=None):
    """Tell the student at once whether ``answer`` is right.

    Parameters
    ----------
    answer : str, number, or list/set of them
    *keys : str
        Keys of the accepted answers, from :func:`key`.
    hint : str, optional
        Printed after a wrong answer.
    explanation : str, optional
        Text made by :func:`seal`, printed after a right answer.

    Returns
    -------
    bool
    """
    if answer is None or answer is Ellipsis:
        print("No answer yet: replace the placeholder with your answer.")
        return False
    if is_correct(answer, *keys):
        why = ""
        if explanation is not None:
            why = _unseal(_question_of(keys[0]), answer, explanation)
        print(f"Correct! {why}".rstrip())
        return True
    print("Not quite: think again." + (f" Hint: {hint}" if hint else ""))
    return False


def main(argv=None):
    """Print the key of an answer: ``python -m course_lib.quiz copies 60``.

    With ``--explain TEXT`` also print TEXT sealed with the answer.
    """
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("question")
    parser.add_argument("answer", help="parsed as JSON when it can be (60, [1, 2])")
    parser.add_argument("--explain", help="an explanation to seal with the answer")
    args = parser.parse_args(argv)
    try:
        answer = json.loads(args.answer)
    except json.JSONDecodeError:
        answer = args.answer
    print(key(args.question, answer))
    if args.explain:
        print(seal(args.question, answer, args.explain))


if __name__ == "__main__":
    main()
