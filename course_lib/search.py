"""Model search on a cluster: grid, random and successive halving.

The recipe of the source lesson, grown up. Persist the cross-validation
splits once (:func:`course_lib.splits.persist_cv_splits`), then send one small
task per (parameter set, split) to a load-balanced view. A task carries the
split's *path*, an unfitted estimator and a parameter dict, never the data:
every engine maps the split read-only with
:func:`course_lib.splits.load_cv_split`.

:func:`launch_search` submits the tasks and returns a :class:`SearchRun` at
once. A background thread collects results as they arrive, so the caller can
look at ``run.progress``, ``run.best()`` or ``run.report()`` while engines
work, ``run.abort()`` what has not started yet, or ``run.wait()`` behind a
progress bar.

Strategies
----------
``"grid"``
    Every combination of the parameter lists, in
    :class:`~sklearn.model_selection.ParameterGrid` order.
``"random"``
    ``n_iter`` parameter sets drawn from lists or ``scipy.stats``
    distributions, as :class:`~sklearn.model_selection.RandomizedSearchCV`
    draws them.
``"halving"``
    Successive halving in rounds: every candidate with a small resource
    (training samples, or an estimator parameter such as ``n_estimators``),
    then the best ``1/factor`` of them with ``factor`` times more, until the
    last round, which uses the full resource.

Engines die, kernels crash: a task whose engine died is sent again (up to
``retries`` times), a task whose fit raised is reported in ``run.errors``
while the others go on, and a journal file lets a new launch rerun only the
tasks whose results it does not hold.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import queue
import re
import socket
import threading
import time
from pathlib import Path

import ipyparallel
import joblib
import numpy as np
from scipy.stats import rankdata
from sklearn.base import clone, is_classifier
from sklearn.metrics import check_scoring
from sklearn.model_selection import ParameterGrid, ParameterSampler
from sklearn.utils import check_random_state

from course_lib.splits import load_cv_split

__all__ = ["SearchRun", "evaluate", "launch_search", "make_candidates"]

STRATEGIES = ("grid", "random", "halving")

#: Seed of the fixed permutation whose first rows form a training subsample
#: in halving rounds over ``"n_samples"``: a smaller subsample is a prefix of
#: a larger one, and every engine draws the same rows.
SUBSAMPLE_SEED = 0

_JOURNAL_FORMAT = "course_lib.search journal"
_JOURNAL_VERSION = 1
_ANSI_ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# --------------------------------------------------------------------------
# The task that runs on an engine
# --------------------------------------------------------------------------


def _subsample_rows(n_rows, n_kept):
    """The first ``n_kept`` rows of a fixed permutation of ``range(n_rows)``, sorted."""
    permutation = np.random.RandomState(SUBSAMPLE_SEED).permutation(n_rows)
    return np.sort(permutation[:n_kept])


def evaluate(
    split_path,
    estimator,
    params,
    scoring=None,
    *,
    n_train_samples=None,
    return_train_score=False,
):
    """Fit one parameter set on one persisted split and score it.

    This is the task that :func:`launch_search` sends to the engines. It is a
    module-level function, so engines import it instead of receiving its
    code, and it opens the split itself: only a path travels.

    Parameters
    ----------
    split_path : str or path
        A split written by :func:`course_lib.splits.persist_cv_splits`, mapped
        read-only.
    estimator : scikit-learn estimator
        Cloned, never modified.
    params : dict
        Parameters set on the clone before fitting.
    scoring : str, callable or None, default=None
        As in scikit-learn: None uses the estimator's ``score`` method.
    n_train_samples : int, optional
        Fit on this many training rows only: the first rows of a fixed
        permutation (see :data:`SUBSAMPLE_SEED`). None or a number at least
        the training set's size uses every row.
    return_train_score : bool, default=False
        Also score the fitted model on the rows it was trained on.

    Returns
    -------
    dict
        ``params``, ``split_path``, ``test_score``, ``fit_time`` and
        ``score_time`` (seconds), ``n_train_samples`` (rows really used),
        ``host`` and ``pid`` of the process that ran it, and ``train_score``
        when asked.

    Examples
    --------
    >>> from sklearn.svm import SVC
    >>> evaluate(paths[0], SVC(), {"C": 10.0})  # doctest: +SKIP
    {'params': {'C': 10.0}, 'test_score': 0.989, 'fit_time': 0.05, ...}
    """
    X_train, y_train, X_test, y_test = load_cv_split(split_path)
    n_train = X_train.shape[0]
    if n_train_samples is not None and n_train_samples < n_train:
        rows = _subsample_rows(n_train, n_train_samples)
        X_train, y_train = X_train[rows], y_train[rows]
    model = clone(estimator).set_params(**clone(params, safe=False))
    scorer = check_scoring(model, scoring=scoring)

    start = time.perf_counter()
    model.fit(X_train, y_train)
    fit_time = time.perf_counter() - start
    start = time.perf_counter()
    test_score = float(scorer(model, X_test, y_test))
    score_time = time.perf_counter() - start

    result = {
        "params": params,
        "split_path": str(split_path),
        "test_score": test_score,
        "fit_time": fit_time,
        "score_time": score_time,
        "n_train_samples": int(X_train.shape[0]),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    if return_train_score:
        result["train_score"] = float(scorer(model, X_train, y_train))
    return result


# --------------------------------------------------------------------------
# Checks at the door
# --------------------------------------------------------------------------


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an int, but got {value!r} (of type {type(value).__name__})."
        )
    if value < minimum:
        raise ValueError(f"{name} == {value!r}, must be >= {minimum}.")
    return int(value)


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
    return None if n_iter is None else _check_int(n_iter, "n_iter", 1)


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
    check_scoring(estimator, scoring=scoring)  # unknown metric names raise here
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
    max_resource = _check_int(max_resource, "max_resource", 1)
    min_resource = _check_int(min_resource, "min_resource", 1)
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


def _task_key(record):
    return (record["round"], record["candidate"], record["split"])


class _Journal:
    """Append-only JSON lines: a header, then one result per line.

    Opening an existing journal checks its header, keeps the complete lines
    and cuts off a torn last line (a crash in the middle of a write), so
    that the next record starts on a line of its own.
    """

    def __init__(self, path, header):
        self.path = Path(path).expanduser().resolve()
        self.records = []
        fresh = True
        if self.path.exists():
            data = self.path.read_bytes()
            complete = data[: data.rfind(b"\n") + 1]
            lines = complete.splitlines()
            if lines:
                self._check_header(lines[0], header)
                self.records = [self._parse(line, n) for n, line in enumerate(lines[1:], 2)]
                fresh = False
            if len(complete) < len(data):
                with open(self.path, "r+b") as file:
                    file.truncate(len(complete))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")  # closed by close()
        if fresh:
            self.append(header)

    def _check_header(self, line, header):
        try:
            found = json.loads(line)
        except ValueError:
            found = None
        if not isinstance(found, dict) or found.get("format") != _JOURNAL_FORMAT:
            raise ValueError(
                f"journal {str(self.path)!r} is not a search journal (its first line is "
                f"{line[:80]!r}). Give a new path."
            )
        if found.get("fingerprint") != header["fingerprint"]:
            raise ValueError(
                f"journal {str(self.path)!r} was written by another search: its "
                f"estimator, parameter space, splits or settings differ from this one's "
                f"(fingerprint {found.get('fingerprint', '?')[:12]}, this search "
                f"{header['fingerprint'][:12]}). Give a new journal path, or delete the "
                f"file to start over."
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


# --------------------------------------------------------------------------
# Launching and following a search
# --------------------------------------------------------------------------


def launch_search(
    view,
    estimator,
    param_space,
    split_paths,
    *,
    strategy="grid",
    n_iter=None,
    scoring=None,
    random_state=None,
    retries=1,
    journal=None,
    factor=3,
    resource="n_samples",
    min_resource=None,
    max_resource=None,
    return_train_score=False,
):
    """Send one task per (parameter set, split) to the cluster; do not wait.

    Everything is checked before the first task is sent. Then every task of
    the search (of the first round, for halving) is submitted at once to a
    load-balanced view, and the :class:`SearchRun` that follows them comes
    back straight away.

    Parameters
    ----------
    view : ipyparallel.LoadBalancedView
        Its client and engines run the tasks; the view itself is not changed.
    estimator : scikit-learn estimator
        Unfitted; cloned for every task.
    param_space : dict or list of dicts
        See :func:`make_candidates`.
    split_paths : list of paths
        From :func:`course_lib.splits.persist_cv_splits`, readable by every
        engine at the same place.
    strategy : {"grid", "random", "halving"}, default="grid"
    n_iter : int, optional
        Number of parameter sets to draw (``"random"``; ``"halving"`` over a
        random draw instead of the grid).
    scoring : str, callable or None, default=None
        One metric, as in scikit-learn; None uses ``estimator.score``.
    random_state : int, RandomState or None
        Seeds the draw of parameter sets.
    retries : int, default=1
        How many times a task is sent again when its engine dies. A task
        whose own code raises is never retried: it goes to ``run.errors``.
    journal : str or path, optional
        Append every result to this file as it arrives. Launching the same
        search with the same journal again reruns only the missing tasks.
    factor : float, default=3
        Halving: keep the best ``1/factor`` of the candidates after each round,
        and give them ``factor`` times more resource.
    resource : str, default="n_samples"
        Halving: what grows from round to round, training samples or the name
        of an integer parameter of the estimator (``"n_estimators"``,
        ``"max_iter"``).
    min_resource, max_resource : int, optional
        Halving: the smallest resource of any round, and the resource of the
        last round. Defaults: at least 20 samples (and 2 per class), or 1 for
        a parameter; every training sample, or the estimator's own value of
        the parameter.
    return_train_score : bool, default=False
        Score each model on its training rows too (costs time; needed by
        ``boxplot_parameters(display_train=True)``).

    Returns
    -------
    SearchRun

    Raises
    ------
    TypeError, ValueError, FileNotFoundError
        Naming the bad value, before any task is submitted: not a
        load-balanced view, an empty space, a parameter the estimator does
        not have, a split path that does not exist, ``n_iter < 1``, an unknown
        strategy or scoring, a halving resource the estimator cannot take, a
        journal written by another search.

    Examples
    --------
    >>> from sklearn.svm import SVC
    >>> run = launch_search(client.load_balanced_view(), SVC(),  # doctest: +SKIP
    ...                     {"C": [0.1, 1, 10], "gamma": [1e-3, 1e-2]}, paths)
    >>> run.progress  # doctest: +SKIP
    0.4
    >>> run.wait()  # doctest: +SKIP
    True
    >>> print(run.report())  # doctest: +SKIP
    """
    lview = _check_view(view)
    estimator = _check_estimator(estimator)
    strategy = _check_strategy(strategy)
    retries = _check_int(retries, "retries", 0)
    scoring = _check_scoring(estimator, scoring)
    split_paths = _check_split_paths(split_paths)
    candidates = make_candidates(param_space, strategy, n_iter=n_iter, random_state=random_state)
    _check_params_exist(estimator, candidates)
    halving = {
        "factor": factor,
        "resource": resource,
        "min_resource": min_resource,
        "max_resource": max_resource,
    }
    rounds = _plan_rounds(strategy, estimator, candidates, split_paths, halving)
    settings = {"scoring": scoring, "return_train_score": bool(return_train_score)}
    if strategy == "halving":
        settings["resource"] = resource
    header = None
    if journal is not None:
        if not isinstance(journal, (str, os.PathLike)):
            raise TypeError(f"journal must be a path, but got {journal!r}.")
        if n_iter is not None and not isinstance(random_state, numbers.Integral):
            raise ValueError(
                f"random_state == {random_state!r}: a journal can only resume a random "
                f"draw made again the same way; give an int random_state."
            )
        fingerprint = _fingerprint(strategy, estimator, candidates, split_paths, rounds, settings)
        header = {
            "format": _JOURNAL_FORMAT,
            "version": _JOURNAL_VERSION,
            "fingerprint": fingerprint,
            "strategy": strategy,
            "estimator": repr(estimator),
            "n_candidates": len(candidates),
            "n_splits": len(split_paths),
            "rounds": rounds,
        }
    run = SearchRun(
        lview,
        estimator,
        candidates,
        split_paths,
        strategy=strategy,
        rounds=rounds,
        resource=resource if strategy == "halving" else None,
        scoring=scoring,
        retries=retries,
        return_train_score=bool(return_train_score),
    )
    run._start(journal, header)
    return run


class SearchRun:
    """A search running on the cluster, followed from the client.

    Made by :func:`launch_search`; do not build one yourself. Every attribute
    answers at once, from the results received so far, while a background
    thread collects new ones (and, for halving, starts the next round).

    Attributes
    ----------
    strategy : str
    candidates : list of dict
        Every parameter set, indexed as in ``results()`` and ``cv_results_``.
    split_paths : list of str
    n_tasks : int
        Tasks the whole search needs (every round of a halving search).
    n_submitted : int
        Tasks sent to the cluster so far, retries included; tasks found in a
        journal are not sent.
    journal_error, collector_error : str or None
        Why results stopped being written to the journal, or stopped being
        collected (a closed client); None while all is well.
    """

    def __init__(
        self,
        view,
        estimator,
        candidates,
        split_paths,
        *,
        strategy,
        rounds,
        resource,
        scoring,
        retries,
        return_train_score,
    ):
        self.strategy = strategy
        self.candidates = candidates
        self.split_paths = split_paths
        self.n_submitted = 0
        self._view = view
        self._estimator = estimator
        self._plan = rounds
        self._resource = resource
        self._scoring = scoring
        self._retries = retries
        self._return_train_score = return_train_score
        self.n_tasks = sum(n_candidates for _, n_candidates in rounds) * len(split_paths)

        self._lock = threading.Lock()
        self._inbox = queue.Queue()  # (task key, AsyncResult) as they resolve
        self._finished = threading.Event()
        self._round_candidates = []  # candidate indices of every round started
        self._records = {}  # (round, candidate, split) -> result dict
        self._pending = {}  # (round, candidate, split) -> (AsyncResult, attempt)
        self._errors = []
        self._n_aborted = 0
        self._aborted = False
        self._journal = None
        self._journaled = {}
        self.journal_error = None
        self.collector_error = None

    # -- running ----------------------------------------------------------

    def _start(self, journal, header):
        if journal is not None:
            self._journal = _Journal(journal, header)
            self._journaled = {_task_key(r): r for r in self._journal.records}
        try:
            with self._lock:
                self._advance()
        except BaseException:
            # Submission failed half-way (client closed, Ctrl-C): cancel what
            # was sent, so that no task runs unfollowed.
            self.abort()
            with self._lock:
                self._pending.clear()
                if not self._finished.is_set():
                    self._finish()
            raise
        if not self._finished.is_set():
            threading.Thread(target=self._collect, name="search-collector", daemon=True).start()

    def _advance(self):
        """Start the next round whenever nothing is pending; finish after the last."""
        while not self._pending and not self._finished.is_set():
            if self._aborted or len(self._round_candidates) == len(self._plan):
                self._finish()
                return
            self._start_round(len(self._round_candidates))

    def _start_round(self, index):
        n_keep = self._plan[index][1]
        if index == 0:
            chosen = list(range(len(self.candidates)))
        else:
            chosen = self._ranked(index - 1)[:n_keep]
        self._round_candidates.append(chosen)
        for candidate in chosen:
            for split in range(len(self.split_paths)):
                key = (index, candidate, split)
                stored = self._journaled.pop(key, None)
                if stored is None:
                    self._submit(key)
                else:
                    self._records[key] = {**stored, "params": self.candidates[candidate]}

    def _submit(self, key, attempt=0):
        index, candidate, split = key
        n_resources = self._plan[index][0]
        params = self.candidates[candidate]
        n_train_samples = None
        if self._resource == "n_samples":
            n_train_samples = n_resources
        elif self._resource is not None:
            params = {**params, self._resource: n_resources}
        ar = self._view.apply_async(
            evaluate,
            self.split_paths[split],
            self._estimator,
            params,
            self._scoring,
            n_train_samples=n_train_samples,
            return_train_score=self._return_train_score,
        )
        self.n_submitted += 1
        self._pending[key] = (ar, attempt)
        ar.add_done_callback(lambda _, key=key, ar=ar: self._inbox.put((key, ar)))

    def _collect(self):
        """Background thread: take results as they come until the search ends."""
        while True:
            item = self._inbox.get()
            if item is None:  # put by _finish
                return
            with self._lock:
                try:
                    self._handle(*item)
                    self._advance()
                except Exception as error:  # a dead thread would hang wait()
                    # Only a broken client gets here (closed, cluster gone):
                    # stop following the search rather than hang wait().
                    self.collector_error = f"stopped following the search: {error!r}"
                    self._n_aborted += len(self._pending)
                    self._pending.clear()
                    self._finish()

    def _handle(self, key, ar):
        entry = self._pending.get(key)
        if entry is None or entry[0] is not ar:
            return  # a task given up by abort() with no engine to tell
        attempt = entry[1]
        del self._pending[key]
        index, candidate, split = key
        try:
            result = ar.get()
        except ipyparallel.error.TaskAborted:
            self._n_aborted += 1
            return
        except Exception as error:  # every failure is reported
            engine_died = getattr(error, "ename", None) == "EngineError" or isinstance(
                error, ipyparallel.error.EngineError
            )
            if engine_died and attempt < self._retries and not self._aborted:
                self._submit(key, attempt + 1)
                return
            self._errors.append(
                {
                    "round": index,
                    "candidate": candidate,
                    "split": split,
                    "params": self.candidates[candidate],
                    "split_path": self.split_paths[split],
                    "error": f"{getattr(error, 'ename', type(error).__name__)}: "
                    f"{getattr(error, 'evalue', error)}",
                    "traceback": _ANSI_ESCAPES.sub("", _traceback_text(error)),
                    "attempts": attempt + 1,
                }
            )
            return
        record = {
            "round": index,
            "candidate": candidate,
            "split": split,
            "n_resources": self._plan[index][0],
            **result,
            "params": self.candidates[candidate],
            "engine_id": ar.metadata.get("engine_id"),
        }
        self._records[key] = record
        if self._journal is not None and self.journal_error is None:
            try:
                self._journal.append(record)
            except (OSError, ValueError) as error:  # disk full, file closed...
                self.journal_error = f"journal writes stopped: {error!r}"

    def _finish(self):
        if self._journal is not None:
            self._journal.close()
        self._finished.set()
        self._inbox.put(None)  # let the collector thread end

    def abort(self):
        """Cancel the tasks that have not started; keep every result received.

        Tasks already running finish and their results are kept; no new
        round starts. ``wait()`` returns once the running tasks are done.
        """
        with self._lock:
            if self._finished.is_set():
                return
            self._aborted = True
            running = [ar for ar, _ in self._pending.values()]
        if not running:
            with self._lock:
                self._advance()
            return
        try:
            self._view.client.abort(running, block=False)
        except ipyparallel.error.NoEnginesRegistered:
            # No engine to tell: give the tasks up here. Should they run one
            # day on a new engine, their results are ignored.
            with self._lock:
                self._n_aborted += len(self._pending)
                self._pending.clear()
                self._advance()

    def wait(self, timeout=None, progress_bar=True):
        """Block until the search ends, or ``timeout`` seconds pass.

        Parameters
        ----------
        timeout : float, optional
            Seconds; None waits as long as it takes. Ctrl-C stops the wait,
            not the search.
        progress_bar : bool, default=True
            Show a ``tqdm`` progress bar (a widget in a notebook).

        Returns
        -------
        bool
            True if the search has ended (``done``).
        """
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or timeout < 0
        ):
            raise ValueError(f"timeout == {timeout!r}, must be None or a number of seconds >= 0.")
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = None
        if progress_bar:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.n_tasks, desc=f"{self.strategy} search", unit="task")
        try:
            while True:
                step = 0.2 if deadline is None else min(0.2, max(0.0, deadline - time.monotonic()))
                ended = self._finished.wait(step)
                n_finished = self._n_finished()
                if bar is not None and n_finished != bar.n:
                    bar.update(n_finished - bar.n)
                if ended or (deadline is not None and time.monotonic() >= deadline):
                    return ended
        finally:
            if bar is not None:
                bar.close()

    # -- looking at it ----------------------------------------------------

    def _n_finished(self):
        with self._lock:
            return len(self._records) + len(self._errors)

    @property
    def progress(self):
        """Fraction of the search's tasks that finished, with a result or an error."""
        return self._n_finished() / self.n_tasks

    @property
    def done(self):
        """True once nothing is left to run: every task finished, or the search was aborted."""
        return self._finished.is_set()

    @property
    def n_aborted(self):
        """Tasks cancelled by :meth:`abort` before they started."""
        with self._lock:
            return self._n_aborted

    @property
    def errors(self):
        """Tasks that raised: round, candidate, split, params, error, traceback text."""
        with self._lock:
            return [dict(error) for error in self._errors]

    def results(self):
        """Every result received so far, one dict per task, in (round, candidate, split) order."""
        with self._lock:
            return [dict(self._records[key]) for key in sorted(self._records)]

    @property
    def rounds(self):
        """One dict per round of the plan: resource, candidates, tasks, status.

        A grid or random search has one round, with ``n_resources`` None.
        """
        with self._lock:
            started = len(self._round_candidates)
            summary = []
            for index, (n_resources, n_candidates) in enumerate(self._plan):
                n_done = sum(1 for key in self._records if key[0] == index)
                n_done += sum(1 for error in self._errors if error["round"] == index)
                n_tasks = n_candidates * len(self.split_paths)
                if index >= started:
                    status = "not run"
                elif n_done == n_tasks:
                    status = "done"
                else:
                    status = "aborted" if self._finished.is_set() else "running"
                summary.append(
                    {
                        "round": index,
                        "n_resources": n_resources,
                        "n_candidates": n_candidates,
                        "n_tasks": n_tasks,
                        "n_done": n_done,
                        "status": status,
                    }
                )
            return summary

    def _scores(self, index, candidate, key="test_score"):
        """Scores of a candidate in a round, one per split (NaN: missing or failed)."""
        scores = np.full(len(self.split_paths), np.nan)
        for split in range(len(self.split_paths)):
            record = self._records.get((index, candidate, split))
            if record is not None and key in record:
                scores[split] = record[key]
        return scores

    def _failed(self, index):
        return {error["candidate"] for error in self._errors if error["round"] == index}

    def _ranked(self, index):
        """Candidates of a round, best mean test score first; ties by index; NaN last."""
        means = {c: self._scores(index, c).mean() for c in self._round_candidates[index]}
        return sorted(means, key=lambda c: (np.isnan(means[c]), -np.nan_to_num(means[c]), c))

    def best(self, n=5):
        """The best parameter sets so far, from every split each has finished.

        Candidates that raised on a split are left out. For halving, only the
        latest round with results counts: rounds differ in resource, so their
        scores do not compare.

        Parameters
        ----------
        n : int, default=5

        Returns
        -------
        list of dict
            ``rank``, ``candidate``, ``params``, ``mean_test_score``,
            ``std_test_score``, ``n_splits`` (splits done), ``n_resources``.
        """
        n = _check_int(n, "n", 1)
        with self._lock:
            rounds_with_results = {key[0] for key in self._records}
            if not rounds_with_results:
                return []
            index = max(rounds_with_results)
            failed = self._failed(index)
            rows = []
            for candidate in self._round_candidates[index]:
                scores = self._scores(index, candidate)
                scores = scores[~np.isnan(scores)]
                if candidate in failed or not scores.size:
                    continue
                rows.append(
                    {
                        "candidate": candidate,
                        "params": self.candidates[candidate],
                        "mean_test_score": float(scores.mean()),
                        "std_test_score": float(scores.std()),
                        "n_splits": int(scores.size),
                        "n_resources": self._plan[index][0],
                    }
                )
        rows.sort(key=lambda row: (-row["mean_test_score"], row["candidate"]))
        return [{"rank": rank, **row} for rank, row in enumerate(rows[:n], 1)]

    def _best_complete(self):
        with self._lock:
            for index in reversed(range(len(self._round_candidates))):
                for candidate in self._ranked(index):
                    scores = self._scores(index, candidate)
                    if np.isnan(scores).any():
                        break  # NaN is ranked last: no complete candidate left
                    return self.candidates[candidate], float(scores.mean())
        raise RuntimeError(
            "No parameter set has been scored on every split yet; wait() for the "
            "search, or look at best() for the results so far."
        )

    @property
    def best_params_(self):
        """Parameters with the best mean test score over every split (last round, for halving)."""
        return self._best_complete()[0]

    @property
    def best_score_(self):
        """Mean test score of :attr:`best_params_`."""
        return self._best_complete()[1]

    @property
    def cv_results_(self):
        """The results in scikit-learn's ``cv_results_`` format, as a dict of arrays.

        One row per candidate (for halving, per candidate and round, with
        ``iter`` and ``n_resources`` as in ``HalvingGridSearchCV``). A task
        not finished yet, or that raised, scores NaN, and so does its
        candidate's mean, as scikit-learn's ``error_score=np.nan`` does.
        """
        with self._lock:
            rows = [
                (index, candidate)
                for index, chosen in enumerate(self._round_candidates)
                for candidate in chosen
            ]
            columns = {"fit_time": [], "score_time": [], "test_score": [], "train_score": []}
            for name, values in columns.items():
                for index, candidate in rows:
                    values.append(self._scores(index, candidate, name))
        n_splits = len(self.split_paths)
        arrays = {
            name: np.array(values).reshape(len(rows), n_splits) for name, values in columns.items()
        }
        results = {}
        if self.strategy == "halving":
            results["iter"] = np.array([index for index, _ in rows])
            results["n_resources"] = np.array([self._plan[index][0] for index, _ in rows])
        for name in ("fit_time", "score_time"):
            results[f"mean_{name}"] = arrays[name].mean(axis=1)
            results[f"std_{name}"] = arrays[name].std(axis=1)
        params = [self.candidates[candidate] for _, candidate in rows]
        results.update(_param_columns(params))
        results["params"] = params
        kinds = ("test", "train") if self._return_train_score else ("test",)
        for kind in kinds:
            scores = arrays[f"{kind}_score"]
            for split in range(n_splits):
                results[f"split{split}_{kind}_score"] = scores[:, split]
            means = np.average(scores, axis=1)
            results[f"mean_{kind}_score"] = means
            results[f"std_{kind}_score"] = np.sqrt(
                np.average((scores - means[:, np.newaxis]) ** 2, axis=1)
            )
            if kind == "test":
                results["rank_test_score"] = _rank(means)
        return results

    def report(self, n=5):
        """A few lines to read: progress, rounds, the best so far, errors.

        Parameters
        ----------
        n : int, default=5
            How many of the best parameter sets to list.

        Returns
        -------
        str
        """
        state = "done" if self.done else "running"
        if self._aborted:
            state = "aborted" + (", running tasks finishing" if not self.done else "")
        lines = [
            f"{self.strategy} search of {len(self.candidates)} parameter sets on "
            f"{len(self.split_paths)} splits: {self._n_finished()}/{self.n_tasks} tasks "
            f"finished ({self.progress:.0%}), {len(self.errors)} errors, {state}."
        ]
        if self.strategy == "halving":
            unit = self._resource
            for r in self.rounds:
                lines.append(
                    f"  round {r['round']}: {r['n_candidates']} candidates x "
                    f"{len(self.split_paths)} splits on {r['n_resources']} {unit}: "
                    f"{r['n_done']}/{r['n_tasks']} tasks, {r['status']}"
                )
        best = self.best(n)
        if best:
            where = ""
            if self.strategy == "halving":
                where = f" (on {best[0]['n_resources']} {self._resource})"
            lines.append(f"Best so far{where}: mean test score +/- std (splits done)")
            for row in best:
                lines.append(
                    f"  {row['rank']}. {row['mean_test_score']:.4f} +/- "
                    f"{row['std_test_score']:.4f} ({row['n_splits']}/{len(self.split_paths)})"
                    f"  {_format_params(row['params'])}"
                )
        errors = self.errors
        for error in errors[:3]:
            lines.append(
                f"Error on split {error['split']} with {_format_params(error['params'])}: "
                f"{error['error']}"
            )
        if len(errors) > 3:
            lines.append(f"... and {len(errors) - 3} more in .errors")
        lines.extend(note for note in (self.journal_error, self.collector_error) if note)
        return "\n".join(lines)

    def __repr__(self):
        state = "done" if self.done else "running"
        return (
            f"<SearchRun {self.strategy}: {self._n_finished()}/{self.n_tasks} tasks, "
            f"{len(self._errors)} errors, {state}>"
        )

    def boxplot_parameters(self, display_train=False):
        """One panel per parameter, one box of test scores per value.

        Every finished task counts once: a box gathers the scores of every
        parameter set with that value, on every split. For halving, only the
        first round is drawn, where every candidate had the same resource.
        Numeric parameters with more than 10 distinct values (a random
        search over distributions) are grouped into quantile bins.

        Parameters
        ----------
        display_train : bool, default=False
            Draw the training scores beside the test scores (the search must
            have been launched with ``return_train_score=True``).

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt

        records = [r for r in self.results() if r["round"] == 0]
        if display_train and not self._return_train_score:
            raise ValueError(
                "display_train=True needs training scores: launch the search with "
                "return_train_score=True."
            )
        if not records:
            raise RuntimeError("No result yet: there is nothing to draw.")
        names = sorted({name for params in self.candidates for name in params})
        fig, axes = plt.subplots(
            1, len(names), figsize=(4 * len(names), 4), squeeze=False, sharey=True
        )
        kinds = ["test_score", "train_score"] if display_train else ["test_score"]
        for ax, name in zip(axes[0], names, strict=True):
            labels, groups = _group_by_value(records, name)
            width = 0.8 / len(kinds)
            for k, kind in enumerate(kinds):
                data = [[r[kind] for r in group] for group in groups]
                positions = np.arange(len(groups)) + (k - (len(kinds) - 1) / 2) * width
                boxes = ax.boxplot(data, positions=positions, widths=width * 0.9, patch_artist=True)
                for patch in boxes["boxes"]:
                    patch.set_facecolor(f"C{k}")
                    patch.set_alpha(0.6)
                    patch.set_label(kind.replace("_", " "))
            ax.set_xticks(np.arange(len(groups)), labels, rotation=45, ha="right")
            ax.set_xlabel(name)
        axes[0][0].set_ylabel("score")
        if display_train:
            handles = [plt.Rectangle((0, 0), 1, 1, color=f"C{k}", alpha=0.6) for k in range(2)]
            axes[0][-1].legend(handles, ["test", "train"])
        fig.tight_layout()
        return fig


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def _traceback_text(error):
    text = getattr(error, "traceback", None)
    if isinstance(text, str) and text:
        return text
    import traceback

    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def _rank(means):
    """scikit-learn's rank: 1 is best, ties share the best rank, NaN ranks last."""
    if np.isnan(means).all():
        return np.ones_like(means, dtype=np.int32)
    filled = np.nan_to_num(means, nan=np.nanmin(means) - 1)
    return rankdata(-filled, method="min").astype(np.int32)


def _param_columns(params_list):
    """``param_<name>`` masked arrays, masked where a candidate lacks the parameter."""
    names = sorted({name for params in params_list for name in params})
    columns = {}
    for name in names:
        values = [params[name] for params in params_list if name in params]
        try:
            inferred = np.array(values)
            dtype = inferred.dtype if inferred.dtype.kind != "U" and inferred.ndim == 1 else object
        except ValueError:
            dtype = object
        column = np.ma.MaskedArray(np.empty(len(params_list), dtype=dtype), mask=True)
        for row, params in enumerate(params_list):
            if name in params:
                column[row] = params[name]
        columns[f"param_{name}"] = column
    return columns


def _format_value(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return f"{value:.4g}"
    return repr(value) if isinstance(value, str) else str(value)


def _format_params(params):
    return ", ".join(f"{name}={_format_value(value)}" for name, value in sorted(params.items()))


def _group_by_value(records, name, max_boxes=10):
    """(labels, groups of records) for one parameter, in the order of its values."""
    present = [r for r in records if name in r["params"]]
    values = [r["params"][name] for r in present]
    numeric = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values) and bool(
        values
    )
    distinct = {_format_value(v): v for v in values}
    if numeric and len(distinct) > max_boxes:
        edges = np.unique(np.quantile(np.asarray(values, dtype=float), np.linspace(0, 1, 9)))
        bins = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
        labels = [
            f"{_format_value(float(lo))}-{_format_value(float(hi))}"
            for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        ]
        groups = [
            [r for r, b in zip(present, bins, strict=True) if b == i] for i in range(len(labels))
        ]
        keep = [i for i, group in enumerate(groups) if group]
        return [labels[i] for i in keep], [groups[i] for i in keep]
    labels = list(distinct)
    if numeric:
        labels.sort(key=lambda label: distinct[label])
    groups = [[r for r in present if _format_value(r["params"][name]) == label] for label in labels]
    return labels, groups
