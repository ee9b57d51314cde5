"""Model search on a cluster: grid, random, successive halving, patient random search.

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
Every name of :data:`STRATEGIES`: one class each, registered in
:mod:`course_lib._search_strategy` (``launch_search(strategy=...)`` also takes
a strategy object). :class:`SearchRun` schedules the rounds a strategy asks
for; what the results say (ranking, ``cv_results_``, report, plots) is
:mod:`course_lib._search_results`.

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
``"patient"``
    A budget of ``n_iter`` random draws, evaluated ``batch_size`` at a time,
    that stops once ``patience`` rounds in a row have not raised the best
    score (``strategy_params={"batch_size": 4, "patience": 2}``).

Engines die, kernels crash: a task whose engine died is sent again (up to
``retries`` times), a task whose fit raised is reported in ``run.errors``
while the others go on, and a journal file lets a new launch rerun only the
tasks whose results it does not hold.
"""

from __future__ import annotations

import numbers
import os
import queue
import re
import socket
import threading
import time

import ipyparallel
import numpy as np
from sklearn.base import clone
from sklearn.metrics import check_scoring

from course_lib import _search_results
from course_lib._search_journal import (
    JOURNAL_FORMAT,
    JOURNAL_VERSION,
    _check_journal_path,
    _fingerprint,
    _Journal,
    _task_key,
)
from course_lib._search_plan import (
    _check_estimator,
    _check_params_exist,
    _check_scoring,
    _check_split_paths,
    _check_view,
)
from course_lib._search_strategy import REGISTRY, SearchStrategy, make_strategy
from course_lib._validation import check_int, check_seconds
from course_lib.splits import load_cv_split

#: The names ``launch_search(strategy=...)`` accepts: every registered strategy.
STRATEGIES = tuple(REGISTRY)

__all__ = [
    "STRATEGIES",
    "SearchRun",
    "SearchStrategy",
    "evaluate",
    "launch_search",
    "make_candidates",
]

#: Seed of the fixed permutation whose first rows form a training subsample
#: in halving rounds over ``"n_samples"``: a smaller subsample is a prefix of
#: a larger one, and every engine draws the same rows.
SUBSAMPLE_SEED = 0

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
    strategy : str, default="grid"
        A name of :data:`STRATEGIES`.
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
    return make_strategy(strategy, n_iter=n_iter).candidates(param_space, random_state)


def _is_name(key):
    return isinstance(key, str) and key.isidentifier()


def _merge_strategy_params(options, strategy_params):
    """The keyword settings and ``strategy_params`` as one dict; a setting twice is refused."""
    if strategy_params is None:
        return options
    if not isinstance(strategy_params, dict) or not all(map(_is_name, strategy_params)):
        raise TypeError(
            f"strategy_params must be a dict of setting names to values, e.g. "
            f"{{'patience': 2}}, but got {strategy_params!r}."
        )
    twice = sorted(name for name in strategy_params if options.get(name) is not None)
    if twice:
        raise TypeError(
            f"{', '.join(twice)} given both as an argument and in strategy_params: give it once."
        )
    return {**options, **strategy_params}


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
    factor=None,
    resource=None,
    min_resource=None,
    max_resource=None,
    return_train_score=False,
    strategy_params=None,
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
    strategy : str or SearchStrategy, default="grid"
        A name of :data:`STRATEGIES` (``"grid"``, ``"random"``,
        ``"halving"``, ...), or a strategy object.
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
    factor : float, optional
        Halving (default 3): keep the best ``1/factor`` of the candidates after each round,
        and give them ``factor`` times more resource.
    resource : str, optional
        Halving (default ``"n_samples"``): what grows from round to round,
        training samples or the name of an integer parameter of the
        estimator (``"n_estimators"``, ``"max_iter"``).
    min_resource, max_resource : int, optional
        Halving: the smallest resource of any round, and the resource of the
        last round. Defaults: at least 20 samples (and 2 per class), or 1 for
        a parameter; every training sample, or the estimator's own value of
        the parameter.
    return_train_score : bool, default=False
        Score each model on its training rows too (costs time; needed by
        ``boxplot_parameters(display_train=True)``).
    strategy_params : dict, optional
        Settings of the strategy beyond those above, by name (each strategy
        documents its own); a name the strategy does not take is refused.

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

    See Also
    --------
    SearchRun : what to do with the search while it runs, and after.
    make_candidates : the parameter sets, in the order they are submitted.

    Notes
    -----
    Only the view's client and engines are used: the search sends its tasks
    through a view of its own, with no scheduler retries. ipyparallel's
    ``retries`` resends a task whatever made it fail, a bug in ``fit`` too;
    the search resends only the tasks whose engine died.

    Engines import the estimator's class by name. A class defined in the
    notebook itself reaches them only after ``client[:].use_cloudpickle()``;
    without it, every task fails and says so in ``run.errors``.

    A journal is matched to a search by a fingerprint of the estimator, the
    parameter sets, the settings and the *content* of the split files (read
    once, at launch), so that splits persisted again to another folder still
    resume.

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
    options = {
        "n_iter": n_iter,
        "factor": factor,
        "resource": resource,
        "min_resource": min_resource,
        "max_resource": max_resource,
    }
    plan = make_strategy(strategy, **_merge_strategy_params(options, strategy_params))
    retries = check_int(retries, "retries", minimum=0)
    scoring = _check_scoring(estimator, scoring)
    split_paths = _check_split_paths(split_paths)
    candidates = plan.candidates(param_space, random_state)
    _check_params_exist(estimator, candidates)
    rounds = plan.plan(estimator, candidates, split_paths)
    settings = {
        "scoring": scoring,
        "return_train_score": bool(return_train_score),
        "strategy": plan.settings(),
    }
    header = None
    if journal is not None:
        journal = _check_journal_path(journal)
        if plan.settings().get("n_iter") is not None and not isinstance(
            random_state, numbers.Integral
        ):
            raise ValueError(
                f"random_state == {random_state!r}: a journal can only resume a random "
                f"draw made again the same way; give an int random_state."
            )
        fingerprint = _fingerprint(plan.name, estimator, candidates, split_paths, rounds, settings)
        header = {
            "format": JOURNAL_FORMAT,
            "version": JOURNAL_VERSION,
            "fingerprint": fingerprint,
            "strategy": plan.name,
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
        strategy=plan,
        rounds=rounds,
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
        The strategy's name.
    strategy_ : SearchStrategy
        The strategy object that chooses the rounds.
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
        scoring,
        retries,
        return_train_score,
    ):
        self.strategy_ = strategy
        self.strategy = strategy.name
        self.candidates = candidates
        self.split_paths = split_paths
        self.n_submitted = 0
        self._view = view
        self._estimator = estimator
        self._plan = list(rounds)
        self._scoring = scoring
        self._retries = retries
        self._return_train_score = return_train_score

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
        self._n_restored = 0  # tasks taken from the journal, never run here
        self._started_at = self._ended_at = None  # time.time() of launch and end
        self.journal_error = None
        self.collector_error = None

    @property
    def n_tasks(self):
        """Tasks the whole search needs: every round of its plan (those it ran, once it stopped)."""
        return sum(n_candidates for _, n_candidates in self._plan) * len(self.split_paths)

    def _history(self):
        """The results as they stand; call with the lock held (copies nothing)."""
        return _search_results.History(
            self.candidates,
            len(self.split_paths),
            self._plan,
            self._round_candidates,
            self._records,
            self._errors,
        )

    def _snapshot(self):
        """A copy of the results, consistent, to read without the lock."""
        with self._lock:
            return _search_results.History(
                self.candidates,
                len(self.split_paths),
                list(self._plan),
                [list(chosen) for chosen in self._round_candidates],
                dict(self._records),
                [dict(error) for error in self._errors],
            )

    # -- running ----------------------------------------------------------

    def _start(self, journal, header):
        self._started_at = time.time()
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
            index = len(self._round_candidates)
            chosen = None
            if not self._aborted and index < len(self._plan):
                chosen = self.strategy_.next_round(index, self._history())
            if chosen is None:
                if not self._aborted:
                    del self._plan[index:]  # the strategy stopped: the rest never runs
                self._finish()
                return
            self._start_round(index, list(chosen))

    def _start_round(self, index, chosen):
        self._round_candidates.append(chosen)
        for candidate in chosen:
            for split in range(len(self.split_paths)):
                key = (index, candidate, split)
                stored = self._journaled.pop(key, None)
                if stored is None:
                    self._submit(key)
                else:
                    self._records[key] = {**stored, "params": self.candidates[candidate]}
                    self._n_restored += 1

    def _submit(self, key, attempt=0):
        index, candidate, split = key
        params, n_train_samples = self.strategy_.task(
            self.candidates[candidate], self._plan[index][0]
        )
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
        self._ended_at = time.time()
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
        if timeout is not None:
            timeout = check_seconds(timeout, "timeout", allow_zero=True)
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = self._progress_bar() if progress_bar else None
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
                if self._ended_at is not None:
                    # Show the search's own duration, not the time since it ended.
                    bar.start_t = time.time() - (self._ended_at - self._started_at)
                bar.close()

    def _progress_bar(self):
        """A tqdm bar timed from the launch, not from this call to ``wait``.

        A search often runs while the notebook does something else; a bar
        timed from ``wait`` would divide every task done by the few
        milliseconds since, and show "00:00, 201 task/s". Its rate is the
        average over the search (tasks taken from a journal do not count).
        """
        from tqdm.auto import tqdm

        bar = tqdm(
            total=self.n_tasks,
            initial=self._n_restored,
            desc=f"{self.strategy} search",
            unit="task",
            smoothing=0,
        )
        bar.start_t = bar.last_print_t = self._started_at
        return bar

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
    def aborted(self):
        """True once :meth:`abort` was called."""
        return self._aborted

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

    def best(self, n=5):
        """The best parameter sets so far, by the ranking rule of :mod:`course_lib._search_results`.

        Each row's mean is over the splits it has finished (``n_splits``);
        candidates that raised on a split are left out. Rounds rank together
        when their scores compare (same resource); for halving, only the
        latest round with results counts.

        Parameters
        ----------
        n : int, default=5

        Returns
        -------
        list of dict
            ``rank``, ``candidate``, ``params``, ``round``,
            ``mean_test_score``, ``std_test_score``, ``n_splits`` (splits
            done), ``n_resources``.
        """
        n = check_int(n, "n", minimum=1)
        rows = _search_results.ranking(self._snapshot(), self.strategy_.rounds_compare)
        return [{"rank": rank, **row} for rank, row in enumerate(rows[:n], 1)]

    @property
    def best_params_(self):
        """The first row of :meth:`best` scored on every split: its parameters.

        Raises
        ------
        RuntimeError
            While no candidate that ranks has finished every split.
        """
        best = _search_results.best_complete(self._snapshot(), self.strategy_.rounds_compare)
        return best["params"]

    @property
    def best_score_(self):
        """Mean test score of :attr:`best_params_`, over every split."""
        best = _search_results.best_complete(self._snapshot(), self.strategy_.rounds_compare)
        return best["mean_test_score"]

    @property
    def cv_results_(self):
        """The results in scikit-learn's ``cv_results_`` format, as a dict of arrays.

        One row per candidate and round it ran in, with the columns the
        strategy adds (halving: ``iter`` and ``n_resources``, as in
        ``HalvingGridSearchCV``). A task not finished yet, or that raised,
        scores NaN, and so does its candidate's mean, as scikit-learn's
        ``error_score=np.nan`` does.
        """
        return _search_results.cv_results(
            self._snapshot(), self.strategy_, self._return_train_score
        )

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
        best = self.best(n)
        history = self._snapshot()
        n_finished = len(history.records) + len(history.errors)
        return "\n".join(_search_results.report_lines(self, history, best, n_finished))

    def __repr__(self):
        state = "done" if self.done else "running"
        return (
            f"<SearchRun {self.strategy}: {self._n_finished()}/{self.n_tasks} tasks, "
            f"{len(self._errors)} errors, {state}>"
        )

    def boxplot_parameters(self, display_train=False):
        """One panel per parameter, one box of test scores per value.

        Every finished task counts once: a box gathers the scores of every
        parameter set with that value, on every split. Where rounds differ
        in resource (halving), only the first round is drawn, where every
        candidate had the same resource. Numeric parameters with more than
        10 distinct values (a random search over distributions) are grouped
        into at most 8 bins: of equal width on a log scale for positive
        values over two decades or more (``loguniform``), else quantile bins
        of about as many values each. The axis label says which.

        Parameters
        ----------
        display_train : bool, default=False
            Draw the training scores beside the test scores (the search must
            have been launched with ``return_train_score=True``).

        Returns
        -------
        matplotlib.figure.Figure
        """
        if display_train and not self._return_train_score:
            raise ValueError(
                "display_train=True needs training scores: launch the search with "
                "return_train_score=True."
            )
        records = self.results()
        if not self.strategy_.rounds_compare:
            records = [r for r in records if r["round"] == 0]
        return _search_results.boxplot_parameters(records, self.candidates, display_train)


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------


def _traceback_text(error):
    text = getattr(error, "traceback", None)
    if isinstance(text, str) and text:
        return text
    import traceback

    return "".join(traceback.format_exception(type(error), error, error.__traceback__))
