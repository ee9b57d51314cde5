"""The checks at the door of a search, each naming the bad value (private to search).

Everything :func:`course_lib.search.launch_search` is given is checked here
before any task is sent: the view, the estimator, the parameter space and
whether the estimator takes it, the scoring, the split files.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import ipyparallel
from sklearn.base import clone
from sklearn.metrics import check_scoring

from course_lib.splits import load_cv_split

# --------------------------------------------------------------------------
# Checks at the door
# --------------------------------------------------------------------------


def check_space(param_space):
    """A dict, or a non-empty list of dicts, each with at least one parameter."""
    spaces = [param_space] if isinstance(param_space, dict) else param_space
    if not isinstance(spaces, (list, tuple)) or not all(isinstance(s, dict) for s in spaces):
        raise TypeError(
            f"param_space must be a dict (or a list of dicts) mapping parameter names "
            f"to lists of values, but got {param_space!r}."
        )
    if not spaces or any(not space for space in spaces):
        raise ValueError(
            f"param_space is empty ({param_space!r}): give at least one parameter and "
            f"its values, e.g. {{'C': [0.1, 1, 10]}}."
        )
    return param_space


def _check_view(view):
    if isinstance(view, ipyparallel.LoadBalancedView):
        # A view of our own over the same engines: the search sets its own
        # flags (no scheduler retries, see SearchRun._handle) and never
        # changes the caller's view.
        return view.client.load_balanced_view(targets=view.targets)
    hint = (
        " Pass client.load_balanced_view()."
        if isinstance(view, (ipyparallel.Client, ipyparallel.DirectView))
        else ""
    )
    raise TypeError(
        f"view must be an ipyparallel LoadBalancedView, but got {view!r} "
        f"(of type {type(view).__name__}).{hint}"
    )


def _check_estimator(estimator):
    if isinstance(estimator, type) or not (
        hasattr(estimator, "fit") and hasattr(estimator, "get_params")
    ):
        hint = f" Did you mean {estimator.__name__}()?" if isinstance(estimator, type) else ""
        raise TypeError(
            f"estimator must be a scikit-learn estimator instance (with fit and "
            f"get_params), but got {estimator!r}.{hint}"
        )
    return clone(estimator)


def _check_params_exist(estimator, candidates):
    """set_params on a clone once per distinct set of names: sklearn names the bad one."""
    seen = set()
    for params in candidates:
        names = tuple(params)
        if names in seen:
            continue
        seen.add(names)
        try:
            clone(estimator).set_params(**params)
        except ValueError as error:
            raise ValueError(f"param_space does not fit the estimator: {error}") from None


def _check_scoring(estimator, scoring):
    if scoring is not None and not isinstance(scoring, str) and not callable(scoring):
        raise TypeError(
            f"scoring must be None, a metric name or a callable scorer, but got "
            f"{scoring!r}: a search ranks by one metric."
        )
    try:
        check_scoring(estimator, scoring=scoring)
    except ValueError as error:  # sklearn's message names check_scoring and lists ~60 names
        if not isinstance(scoring, str):
            raise
        from sklearn.metrics import get_scorer_names

        close = difflib.get_close_matches(scoring, get_scorer_names(), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"scoring == {scoring!r} is not a metric name scikit-learn knows.{hint} "
            f"sklearn.metrics.get_scorer_names() lists them all."
        ) from error
    return scoring


def _check_split_paths(split_paths):
    if isinstance(split_paths, (str, os.PathLike)) or not hasattr(split_paths, "__iter__"):
        raise TypeError(
            f"split_paths must be a list of paths from persist_cv_splits, but got {split_paths!r}."
        )
    paths = []
    for i, path in enumerate(split_paths):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"split_paths[{i}] must be a path, but got {path!r}.")
        path = Path(path).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"split_paths[{i}] == {str(path)!r} does not exist.")
        load_cv_split(path)  # maps, reads nothing: refuses a file that is not a split
        paths.append(str(path))
    if not paths:
        raise ValueError("split_paths is empty: persist at least one split.")
    return paths
