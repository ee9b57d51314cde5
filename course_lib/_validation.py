"""Input checks shared by the course_lib modules (scikit-learn's message style)."""

import numbers


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
