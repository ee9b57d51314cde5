"""The plan of a search, made before any task runs (private to :mod:`course_lib.search`).

* the checks at the door, each naming the bad value;
* the candidates: a plain, deterministic, indexable list of parameter dicts;
* the rounds of successive halving;
* the journal, which says which tasks of the plan have already run.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import numbers
import os
import warnings
from pathlib import Path

import ipyparallel
import joblib
import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import ParameterGrid, ParameterSampler
from sklearn.utils import check_random_state

from course_lib._validation import check_int
from course_lib.splits import load_cv_split

STRATEGIES = ("grid", "random", "halving")

JOURNAL_FORMAT = "course_lib.search journal"
JOURNAL_VERSION = 1

# --------------------------------------------------------------------------
# Checks at the door
# --------------------------------------------------------------------------


def _check_strategy(strategy):
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy == {strategy!r}, must be one of {', '.join(STRATEGIES)}.")
    return strategy


def _check_n_iter(n_iter, strategy):
    if strategy == "random" and n_iter is None:
        raise ValueError("strategy='random' needs n_iter, the number of parameter sets to draw.")
    if strategy == "grid" and n_iter is not None:
        raise ValueError(
            f"n_iter == {n_iter!r} but strategy='grid' evaluates every combination; "
            f"use strategy='random' to draw n_iter of them."
        )
    return None if n_iter is None else check_int(n_iter, "n_iter", minimum=1)


def _check_space(param_space):
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


def make_candidates(param_space, strategy="grid", *, n_iter=None, random_state=None):
    """The parameter sets a search evaluates, in the order it submits them.

    A plain list: deterministic (keys sorted, as in scikit-learn), with a
    length and an index, so that a task is named by a candidate index and a
    split index, and a journal can tell which pairs are done.

    Parameters
    ----------
    param_space : dict or list of dicts
        Parameter names mapped to lists of values; for ``"random"`` (and
        ``"halving"`` with ``n_iter``) also to ``scipy.stats`` distributions.
    strategy : {"grid", "random", "halving"}, default="grid"
    n_iter : int, optional
        Number of parameter sets to draw: required by ``"random"``; with
        ``"halving"``, draw that many instead of taking the whole grid.
    random_state : int, numpy.random.RandomState or None
        Seeds the draw. Give an int to get the same list in every session.

    Returns
    -------
    list of dict

    Raises
    ------
    TypeError, ValueError
        An empty space, a value list that is empty or not a list, a bad
        strategy or ``n_iter``.

    Examples
    --------
    >>> make_candidates({"gamma": [0.01, 0.1], "C": [1, 10]})  # doctest: +NORMALIZE_WHITESPACE
    [{'C': 1, 'gamma': 0.01}, {'C': 1, 'gamma': 0.1},
     {'C': 10, 'gamma': 0.01}, {'C': 10, 'gamma': 0.1}]
    >>> make_candidates({"C": [1, 10, 100]}, "random", n_iter=2, random_state=0)
    [{'C': 100}, {'C': 10}]
    """
    strategy = _check_strategy(strategy)
    n_iter = _check_n_iter(n_iter, strategy)
    _check_space(param_space)
    if n_iter is None:
        return list(ParameterGrid(param_space))
    # The same draw as RandomizedSearchCV(random_state=...), then shuffled:
    # drawn from lists only, it may come out in grid order, and a search cut
    # short (abort, budget) should have tried a spread of the space.
    rng = check_random_state(random_state)
    drawn = list(ParameterSampler(param_space, n_iter, random_state=rng))
    return [dict(sorted(drawn[i].items())) for i in rng.permutation(len(drawn))]


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


# --------------------------------------------------------------------------
# Successive halving: the plan of rounds
# --------------------------------------------------------------------------


def _halving_plan(n_candidates, factor, min_resource, max_resource):
    """Resource and number of candidates of every round; the last uses ``max_resource``.

    As scikit-learn's ``HalvingGridSearchCV``, there are as many rounds as it
    takes to get down to fewer than ``factor`` candidates, but no more than
    the resource allows between ``min_resource`` and ``max_resource``. The
    rounds are counted back from ``max_resource``, so that the survivors are
    scored exactly as a full grid search would score them.

    >>> _halving_plan(20, 3, 20, 1347)
    [(149, 20), (449, 7), (1347, 3)]
    """
    n_needed, remaining = 1, n_candidates
    while remaining >= factor:
        remaining /= factor
        n_needed += 1
    n_possible, resource = 1, max_resource
    while resource / factor >= min_resource:
        resource /= factor
        n_possible += 1
    n_rounds = min(n_needed, n_possible)
    plan, kept = [], n_candidates
    for i in range(n_rounds):
        plan.append((int(max_resource // factor ** (n_rounds - 1 - i)), kept))
        kept = math.ceil(kept / factor)
    return plan


def _check_factor(factor):
    if isinstance(factor, bool) or not isinstance(factor, numbers.Real) or not factor > 1:
        raise ValueError(f"factor == {factor!r}, must be a number > 1.")
    return factor


def _plan_rounds(strategy, estimator, candidates, split_paths, halving):
    """[(n_resources, n_candidates), ...]: one round, or the halving rounds."""
    if strategy != "halving":
        return [(None, len(candidates))]
    factor = _check_factor(halving["factor"])
    resource = halving["resource"]
    min_resource, max_resource = halving["min_resource"], halving["max_resource"]
    if resource == "n_samples":
        train_sizes = [load_cv_split(path)[0].shape[0] for path in split_paths]
        limit = max(train_sizes)
        if max_resource is None:
            max_resource = limit
        if min_resource is None:
            min_resource = 20
            if is_classifier(estimator):
                classes = np.unique(np.asarray(load_cv_split(split_paths[0])[1]))
                min_resource = max(min_resource, 2 * len(classes))
    else:
        valid = estimator.get_params(deep=True)
        if not isinstance(resource, str) or resource not in valid:
            raise ValueError(
                f"resource == {resource!r} is neither 'n_samples' nor a parameter of "
                f"{type(estimator).__name__}: valid parameters are {sorted(valid)}."
            )
        if any(resource in params for params in candidates):
            raise ValueError(
                f"resource == {resource!r} is also in param_space: halving sets it "
                f"itself, round by round. Remove it from param_space."
            )
        if max_resource is None:
            max_resource = valid[resource]
            if isinstance(max_resource, bool) or not isinstance(max_resource, numbers.Integral):
                raise ValueError(
                    f"{type(estimator).__name__}.{resource} == {max_resource!r} is not an "
                    f"int to take as the largest resource: give max_resource."
                )
        if min_resource is None:
            min_resource = 1
        limit = None
    max_resource = check_int(max_resource, "max_resource", minimum=1)
    min_resource = check_int(min_resource, "min_resource", minimum=1)
    if limit is not None and max_resource > limit:
        raise ValueError(
            f"max_resource == {max_resource} but the largest training split has {limit} samples."
        )
    if min_resource > max_resource:
        raise ValueError(f"min_resource == {min_resource} is above max_resource == {max_resource}.")
    return _halving_plan(len(candidates), factor, min_resource, max_resource)


# --------------------------------------------------------------------------
# The journal: one JSON line per result, to resume a search
# --------------------------------------------------------------------------


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value)


def _file_digest(path, chunk_bytes=4 * 2**20):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def _fingerprint(strategy, estimator, candidates, split_paths, rounds, settings):
    """What makes two searches the same: their results can be merged."""
    parts = {
        "strategy": strategy,
        "estimator": joblib.hash(estimator),
        "candidates": joblib.hash(candidates),
        "splits": [_file_digest(path) for path in split_paths],
        "rounds": rounds,
        "settings": joblib.hash(settings),
    }
    text = json.dumps(parts, sort_keys=True, default=_jsonable)
    return hashlib.sha256(text.encode()).hexdigest()


def _check_journal_path(journal):
    """The journal's absolute path: a file, or a new name in an existing folder."""
    if not isinstance(journal, (str, os.PathLike)):
        raise TypeError(
            f"journal must be a file path (str or path-like), but got {journal!r} "
            f"(of type {type(journal).__name__})."
        )
    path = Path(journal).expanduser().resolve()
    if path.is_dir():
        raise IsADirectoryError(
            f"journal == {str(journal)!r} is a folder: give a file path, e.g. "
            f"{str(Path(journal) / 'search.jsonl')!r}."
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"journal == {str(journal)!r}: its folder {str(path.parent)!r} does not exist. "
            f"Create it first, or give a path in an existing folder."
        )
    return path


def _task_key(record):
    return (record["round"], record["candidate"], record["split"])


class _Journal:
    """Append-only JSON lines: a header, then one result per line.

    Only an empty file, or a journal of the *same* search, is ever written
    to: anything else is refused before the file is opened for writing,
    whatever its last byte. Opening a journal of this search keeps its
    complete lines and cuts off a torn last line (a crash in the middle of a
    write), with a warning that says how many bytes went, so that the next
    record starts on a line of its own.
    """

    def __init__(self, path, header):
        self.path = _check_journal_path(path)
        self.records = []
        data = self.path.read_bytes() if self.path.exists() else b""
        complete = data[: data.rfind(b"\n") + 1]
        if data:
            # The first line decides, complete or not: a file of another
            # kind is refused whether or not it ends with a newline.
            first = data.split(b"\n", 1)[0]
            self._check_header(first, header)
            lines = complete.splitlines()
            self.records = [self._parse(line, n) for n, line in enumerate(lines[1:], 2)]
        if complete and len(complete) < len(data):
            warnings.warn(
                f"journal {str(self.path)!r}: removed a torn last line of "
                f"{len(data) - len(complete)} bytes (a write cut short); its task runs again.",
                UserWarning,
                stacklevel=4,
            )
            with open(self.path, "r+b") as file:
                file.truncate(len(complete))
        self._file = open(self.path, "a", encoding="utf-8")  # closed by close()
        if not complete:
            if data:  # the header of this very search, cut before its newline
                self._file.write("\n")
            else:
                self.append(header)

    def _check_header(self, line, header):
        try:
            found = json.loads(line)
        except ValueError:
            found = None
        if not isinstance(found, dict) or found.get("format") != JOURNAL_FORMAT:
            start = line[:80].decode("utf-8", "replace")
            raise ValueError(
                f"journal {str(self.path)!r} is not a search journal (its first line is "
                f"{start!r}): it was left unchanged. Give a new path, or an empty file."
            )
        if found.get("fingerprint") != header["fingerprint"]:
            raise ValueError(
                f"journal {str(self.path)!r} was written by another search: its "
                f"estimator, parameter space, splits or settings differ from this one's "
                f"(fingerprint {found.get('fingerprint', '?')[:12]}, this search "
                f"{header['fingerprint'][:12]}); it was left unchanged. Give a new journal "
                f"path, or delete the file yourself to start over."
            )

    def _parse(self, line, line_number):
        try:
            record = json.loads(line)
            _task_key(record)
        except (ValueError, KeyError, TypeError):
            raise ValueError(
                f"journal {str(self.path)!r} is corrupt: line {line_number} is not a "
                f"result ({line[:80]!r}). Only the last line may be torn."
            ) from None
        return record

    def append(self, record):
        self._file.write(json.dumps(record, sort_keys=True, default=_jsonable) + "\n")
        self._file.flush()

    def close(self):
        self._file.close()
