"""Input checks shared by the course_lib modules (scikit-learn's message style).

The one home of the integer, seconds and file checks: every module (bench
and tests included) calls these, none writes its own.
"""

import numbers
import os
from pathlib import Path


def check_int(value, name, *, minimum=1):
    """``value`` as an int, or a TypeError/ValueError that names it.

    Examples
    --------
    >>> check_int(3, "n_engines")
    3
    >>> check_int(0, "n_engines")
    Traceback (most recent call last):
    ...
    ValueError: n_engines == 0, must be >= 1.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an int, but got {value!r} (of type {type(value).__name__})."
        )
    if value < minimum:
        raise ValueError(f"{name} == {value!r}, must be >= {minimum}.")
    return int(value)


def check_seconds(value, name, *, allow_zero=False):
    """``value`` as a float number of seconds, > 0 (or >= 0), or an error that names it.

    The one check of a duration in course_lib: timeouts, sampling intervals,
    grace periods.

    Examples
    --------
    >>> check_seconds(2, "timeout")
    2.0
    >>> check_seconds(0, "timeout")
    Traceback (most recent call last):
    ...
    ValueError: timeout == 0, must be > 0 seconds.
    >>> check_seconds("5", "interval")
    Traceback (most recent call last):
    ...
    TypeError: interval must be a number of seconds, but got '5' (of type str).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a number of seconds, but got {value!r} "
            f"(of type {type(value).__name__})."
        )
    if not (value >= 0 if allow_zero else value > 0):  # NaN fails both
        raise ValueError(f"{name} == {value!r}, must be {'>=' if allow_zero else '>'} 0 seconds.")
    return float(value)


def check_file(path, name, *, hint=""):
    """``path`` as a :class:`pathlib.Path` to an existing file, or an error naming it.

    Checked here, on the client, before any task: the course's engines read
    files at the same path on every host, so a file missing here is missing
    there too.

    Examples
    --------
    >>> check_file("/no/such.csv", "csv_path")
    Traceback (most recent call last):
    ...
    FileNotFoundError: csv_path == '/no/such.csv' does not exist.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"{name} must be a file path (str or path-like), but got {path!r} "
            f"(of type {type(path).__name__})."
        )
    checked = Path(path).expanduser()
    if checked.is_dir():
        raise IsADirectoryError(f"{name} == {str(path)!r} is a folder, not a file.{hint}")
    if not checked.is_file():
        raise FileNotFoundError(f"{name} == {str(path)!r} does not exist.{hint}")
    return checked


def raise_remote_file_not_found(error, name, value):
    """Re-raise an engine's FileNotFoundError (in an ipyparallel error) as a local one.

    Does nothing if no engine failed that way; the caller then re-raises
    ``error`` itself.
    """
    errors = getattr(error, "elist", None) or [
        (getattr(error, "ename", None), getattr(error, "evalue", error), None, None)
    ]
    for ename, evalue, _, engine_info in errors:
        if ename == "FileNotFoundError":
            engine = (engine_info or {}).get("engine_id", "?")
            raise FileNotFoundError(
                f"Engine {engine} could not open {name} {value!r}: every engine must "
                f"see the file at that path (copy it to each host). The engine said: {evalue}"
            ) from error
