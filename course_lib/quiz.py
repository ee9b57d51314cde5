"""Pop quizzes checked on the spot, without the answer readable in the lesson.

Each quiz has an id (``"l1-copies"``) and an entry in ``quiz_data.json``, next
to this module: the *key* of the right answer (a salted hash), a hint, and an
explanation *sealed* with the right answer, so that the release shows neither
the answer nor why before the student has found it. A quiz cell is short::

    answer_copies = ...  # a whole number
    quiz.check(answer_copies, "l1-copies")

:func:`check` prints one line at once: "Correct!" and the explanation,
"Not quite" and the hint, or what to replace. The graded check of the cell,
:func:`course_lib.checking.check_quiz`, asks for the answer's value as data and
calls :func:`is_correct` in the checker kernel, apart from the student's code:
nothing a student cell replaces here can change the grade. This module imports
the standard library only, and keeps no state.

Answers are normalised before hashing, so that every fair form of an answer
matches: ``"AdaBoost "`` and ``"adaboost"``; ``60``, ``numpy.int64(60)`` and
``60.0``; ``{"a", "c"}``, ``["C", "a"]`` and ``("a", "c")``.

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
>>> check(59, k, hint="5 folds times 12 settings.")
Not quite. Hint: 5 folds times 12 settings.
>>> check(..., k)
Replace ... with your answer, then run this cell again.
>>> is_correct(59, k)
False
"""

from __future__ import annotations

import argparse
import base64
import binascii
import decimal
import hashlib
import json
import numbers
import re
from collections.abc import Collection, Mapping
from pathlib import Path

__all__ = ["check", "is_correct", "key", "normalize", "seal"]

DATA_FILE = Path(__file__).with_name("quiz_data.json")

_DIGEST_CHARS = 20
_QUESTION = re.compile(r"[A-Za-z0-9_.-]+")
_KEY = re.compile(rf"({_QUESTION.pattern}):[0-9a-f]{{{_DIGEST_CHARS}}}")


def _describe(value):
    return f"{value!r} (of type {type(value).__name__})"


def normalize(answer):
    """The canonical text of an answer, the one that is hashed.

    Strings are case-folded with spaces collapsed. Numbers: any integer
    (``numbers.Integral``, numpy's too) and any real with an integral value
    (``2.0``) give the same text; other reals keep 6 significant digits.
    Any other collection (list, tuple, set, numpy array, ...) is a set of
    choices: its normalised items, without repeats, sorted and comma-separated
    (not an iterator or generator: the first check would use it up, and the
    graded test would see nothing).

    Parameters
    ----------
    answer : str, number, or a collection of them

    Returns
    -------
    str

    Raises
    ------
    TypeError
        For anything else (``None``, a function, a dict, bytes, a generator).

    Examples
    --------
    >>> normalize("  Random   Forests ")
    'random forests'
    >>> normalize(3.0), normalize(0.1234567)
    ('3', '0.123457')
    >>> normalize(["b", "A", "b"])
    'a,b'
    """
    if isinstance(answer, bool):
        return "true" if answer else "false"
    if isinstance(answer, numbers.Integral):
        return str(int(answer))
    if isinstance(answer, (numbers.Real, decimal.Decimal)):
        value = float(answer)
        if value.is_integer():
            return str(int(value))
        return format(value, ".6g")
    if isinstance(answer, str):
        # str's own methods: a subclass of str cannot change what is hashed
        return re.sub(r"\s+", " ", str.casefold(str.strip(answer)))
    if hasattr(answer, "tolist") and hasattr(answer, "ndim"):  # a numpy array
        return normalize(answer.tolist())
    if isinstance(answer, Collection) and not isinstance(answer, (bytes, bytearray, Mapping)):
        return ",".join(sorted({normalize(item) for item in answer}))
    raise TypeError(
        f"A quiz answer must be a string, a number, or a list/set of them, but got "
        f"{_describe(answer)}."
    )


def _check_question(question, name="question"):
    if not isinstance(question, str):
        raise TypeError(f"{name} must be a str, but got {_describe(question)}.")
    if not _QUESTION.fullmatch(question):
        raise ValueError(
            f"{name} must be a short identifier of letters, digits, '_', '.' or '-', "
            f"but got {question!r}."
        )
    return question


def key(question, answer):
    """The key of ``answer`` to ``question``: what a lesson stores.

    Parameters
    ----------
    question : str
        A short identifier, unique in the course (it salts the hash).
    answer : str, number, or a collection of them
        The right answer.

    Returns
    -------
    str
        ``"<question>:<hex digest>"``.

    Examples
    --------
    >>> key("copies", 60) == key("copies", 60.0)
    True
    """
    _check_question(question)
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

    A quiz's entry stores the sealed text; :func:`check` prints it once the
    student has found the answer, so the release never shows why before it is
    solved.

    Parameters
    ----------
    question : str
        The quiz id, as given to :func:`key`.
    answer : str, number, or a collection of them
        The right answer.
    explanation : str
        What to print after "Correct!".

    Returns
    -------
    str
        The sealed explanation, in base64.

    Examples
    --------
    >>> sealed = seal("copies", 60, "5 folds x 12 settings.")
    >>> "folds" in sealed
    False
    >>> check(60, key("copies", 60), explanation=sealed)
    Correct! 5 folds x 12 settings.
    """
    _check_question(question)
    normalize(answer)
    if not isinstance(explanation, str):
        raise TypeError(f"explanation must be a str, but got {_describe(explanation)}.")
    return base64.b64encode(_xor_with_answer(question, answer, explanation.encode())).decode()


def _unseal(question, answer, sealed):
    """The explanation, or "" when it was sealed with another accepted answer."""
    try:
        return _xor_with_answer(question, answer, base64.b64decode(sealed)).decode()
    except UnicodeDecodeError:
        return ""


def _load_quizzes(path=None):
    """Every quiz's entry, read from ``quiz_data.json`` (read each time: no state)."""
    return json.loads(Path(path or DATA_FILE).read_text(encoding="utf-8"))


def _resolve(refs, *, name="keys"):
    """The keys that ``refs`` (keys or quiz ids) stand for, and the quiz's entry.

    Checked at the door: a TypeError or ValueError names a bad reference.
    """
    if not refs:
        raise ValueError(f"{name} must hold at least one quiz key or quiz id, but got none.")
    keys, entry, quizzes = [], {}, None
    for ref in refs:
        if not isinstance(ref, str):
            raise TypeError(
                f"{name} must be quiz keys or quiz ids (str), but got {_describe(ref)}."
            )
        if _KEY.fullmatch(ref):
            keys.append(ref)
            continue
        if ":" in ref or not _QUESTION.fullmatch(ref):
            raise ValueError(
                f"{ref!r} is neither a quiz key made by course_lib.quiz.key "
                f"('<quiz id>:<{_DIGEST_CHARS} hex digits>') nor a quiz id."
            )
        quizzes = _load_quizzes() if quizzes is None else quizzes
        if ref not in quizzes:
            raise ValueError(f"{ref!r} is not a quiz id of {DATA_FILE.name}: see {DATA_FILE}.")
        entry = quizzes[ref]
        keys.extend(entry["keys"])
    return keys, entry


def _matches(answer, keys):
    try:
        text = normalize(answer)
    except TypeError:
        return False
    for answer_key in keys:
        question = answer_key.split(":")[0]
        digest = hashlib.sha256(f"{question}\x00{text}".encode()).hexdigest()
        if f"{question}:{digest[:_DIGEST_CHARS]}" == answer_key:
            return True
    return False


def is_correct(answer, *keys):
    """Whether ``answer`` matches one of ``keys``. Silent; for graded tests.

    Parameters
    ----------
    answer : object
        The student's answer. An answer of the wrong type (``None``, ``...``,
        a function) is simply wrong.
    *keys : str
        Keys from :func:`key`, or quiz ids of ``quiz_data.json``.

    Returns
    -------
    bool

    Examples
    --------
    >>> is_correct(2.0, key("halving", 2))
    True
    """
    return _matches(answer, _resolve(keys)[0])


def check(answer, *keys, hint=None, explanation=None, label=None):
    """Tell the student at once whether ``answer`` is right, in one printed line.

    Parameters
    ----------
    answer : object
        The student's answer.
    *keys : str
        Keys of the accepted answers, from :func:`key`, or a quiz id of
        ``quiz_data.json``, whose entry gives the keys, hint, explanation and
        label.
    hint : str, optional
        Printed after a wrong answer.
    explanation : str, optional
        Text made by :func:`seal`, printed after a right answer.
    label : str, optional
        Printed first, to tell apart two questions checked in one cell.

    Returns
    -------
    None
        The verdict is printed, not returned (a notebook would show a bare
        ``True`` or ``False`` for the last check of a cell only).

    Raises
    ------
    TypeError
        If ``answer`` is of a type no answer can have (a dict, a function,
        bytes...), naming it: that is a slip in the code, not a wrong answer.
        ``...`` and None (not answered yet) print what to do instead.

    Examples
    --------
    >>> check("Gamma", key("matters", "gamma"), label="Question 2")
    Question 2: Correct!
    """
    answer_keys, entry = _resolve(keys)
    if answer is not Ellipsis and answer is not None:
        try:
            normalize(answer)
        except TypeError:
            raise TypeError(
                f"answer must be a string, a number, or a list/set of them, but got "
                f"{_describe(answer)}: assign your answer itself, e.g. answer = 3."
            ) from None
    hint = entry.get("hint") if hint is None else hint
    explanation = entry.get("explanation") if explanation is None else explanation
    label = entry.get("label") if label is None else label
    for name, value in (("hint", hint), ("explanation", explanation), ("label", label)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{name} must be a str or None, but got {_describe(value)}.")
    if explanation is not None:
        try:
            base64.b64decode(explanation, validate=True)
        except binascii.Error as error:
            raise ValueError(
                f"explanation must be a text made by course_lib.quiz.seal, but got {explanation!r}."
            ) from error
    print((f"{label}: " if label else "") + _verdict(answer, answer_keys, hint, explanation))


def _verdict(answer, keys, hint, explanation):
    if answer is Ellipsis or answer is None:
        return "Replace ... with your answer, then run this cell again."
    if _matches(answer, keys):
        why = ""
        if explanation is not None:
            why = _unseal(keys[0].split(":")[0], answer, explanation)
        return f"Correct! {why}".rstrip()
    return "Not quite." + (f" Hint: {hint}" if hint else " Think again.")


def main(argv=None):
    """Print the key of an answer: ``python -m course_lib.quiz l1-copies 60``.

    With ``--explain TEXT`` also print TEXT sealed with the answer. With
    ``--save``, write the quiz's entry (key, ``--hint``, sealed explanation,
    ``--label``) into ``quiz_data.json``; an existing entry is replaced only
    with ``--replace``.
    """
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("question", help="the quiz id, e.g. l1-copies")
    parser.add_argument("answer", help="parsed as JSON when it can be (60, [1, 2])")
    parser.add_argument("--explain", help="an explanation to seal with the answer")
    parser.add_argument("--hint", help="printed after a wrong answer")
    parser.add_argument("--label", help="printed before the verdict")
    parser.add_argument("--save", action="store_true", help=f"write the entry into {DATA_FILE}")
    parser.add_argument("--replace", action="store_true", help="with --save: replace an entry")
    args = parser.parse_args(argv)
    try:
        answer = json.loads(args.answer)
    except json.JSONDecodeError:
        answer = args.answer
    try:
        answer_key = key(args.question, answer)
    except (TypeError, ValueError) as error:
        parser.error(str(error))
    print(answer_key)
    sealed = seal(args.question, answer, args.explain) if args.explain else None
    if sealed:
        print(sealed)
    if not args.save:
        return
    quizzes = _load_quizzes()
    if args.question in quizzes and not args.replace:
        parser.error(f"{args.question!r} is already in {DATA_FILE}: add --replace to replace it.")
    entry = {"keys": [answer_key], "hint": args.hint, "explanation": sealed, "label": args.label}
    quizzes[args.question] = {name: value for name, value in entry.items() if value}
    DATA_FILE.write_text(json.dumps(quizzes, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"saved {args.question!r} in {DATA_FILE}")


if __name__ == "__main__":
    main()
