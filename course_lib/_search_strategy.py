"""What a search evaluates, round by round: the strategy interface and its one registry.

A strategy is a small object, as a scikit-learn search is one hook
(``_run_search``) over shared machinery. :class:`SearchStrategy` says

* which parameter sets the search may evaluate (:meth:`~SearchStrategy.candidates`,
  fixed at launch, so that a task is named by indices a journal can store);
* the rounds it may run, at most (:meth:`~SearchStrategy.plan`);
* which candidates the next round evaluates, from the results so far, or that
  the search is done (:meth:`~SearchStrategy.next_round`);
* what a task of a round sets (:meth:`~SearchStrategy.task`) and the columns it
  adds to ``cv_results_`` (:meth:`~SearchStrategy.columns`).

:class:`course_lib.search.SearchRun` schedules the tasks and never asks which
strategy it runs. Adding one is a new ``_strategy_<name>.py`` module with a
subclass, and one line in :data:`REGISTRY`.
"""

from __future__ import annotations

import importlib
import inspect

from course_lib._validation import check_int

#: Strategy name -> ``"module:Class"``, imported when first asked for (as
#: entry points are). ``launch_search(strategy=NAME)`` accepts every name here.
REGISTRY = {
    "grid": "course_lib._strategy_grid:GridStrategy",
    "random": "course_lib._strategy_random:RandomStrategy",
    "halving": "course_lib._strategy_halving:HalvingStrategy",
    "patient": "course_lib._strategy_patient:PatientStrategy",
}


class SearchStrategy:
    """The base of every strategy: one round over every candidate, with every resource.

    Subclasses set :attr:`name` and override what differs. Settings are the
    keyword arguments of ``__init__``, checked there, each naming a bad value.

    Attributes
    ----------
    name : str
        Its key in :data:`REGISTRY`.
    resource : str or None
        What ``n_resources`` of a round counts (``"n_samples"``, or the name
        of an estimator parameter); None when every round uses everything.
    rounds_compare : bool
        True when the scores of different rounds compare (the same
        resource): the ranking then spans every round, else only the latest
        round with results (see :func:`course_lib._search_results.ranking`).

    Examples
    --------
    >>> strategy = make_strategy("grid")
    >>> strategy.candidates({"C": [1, 10]}, random_state=None)
    [{'C': 1}, {'C': 10}]
    >>> strategy.plan(None, [{"C": 1}, {"C": 10}], [])
    [(None, 2)]
    """

    name = None
    resource = None
    rounds_compare = True

    def candidates(self, param_space, random_state):
        """Every parameter set the search may evaluate, in the order it submits them."""
        raise NotImplementedError

    def plan(self, estimator, candidates, split_paths):
        """``[(n_resources, n_candidates), ...]``: the rounds the search may run, at most.

        Checked and fixed at launch, before any task: the progress, the
        journal's fingerprint and the report count on it. A strategy that
        stops early (:meth:`next_round` returns None) runs fewer.
        """
        self._plan = [(None, len(candidates))]
        return self._plan

    def next_round(self, index, history):
        """Candidate indices of round ``index``, or None when the search is done.

        Called when round ``index - 1`` has no task left (``index`` 0 first).

        Parameters
        ----------
        index : int
            The round to start; never past the plan.
        history : course_lib._search_results.History
            The rounds run so far, their candidates and scores.

        Returns
        -------
        list of int or None
        """
        if index == 0:
            return list(range(self._plan[0][1]))
        return None

    def task(self, params, n_resources):
        """``(params, n_train_samples)`` of one task of a round with ``n_resources``."""
        return params, None

    def columns(self, rows, plan):
        """Columns this strategy adds to ``cv_results_``, one value per row.

        Parameters
        ----------
        rows : list of (round, candidate)
        plan : list of (n_resources, n_candidates)
        """
        return {}

    def stop_reason(self, history):
        """One sentence on why the search ended before its last planned round, or ``""``."""
        return ""

    def settings(self):
        """The strategy's settings, for the journal's fingerprint."""
        return {name: getattr(self, name) for name in _init_parameters(type(self))}


def _init_parameters(cls):
    return [
        name
        for name, parameter in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and parameter.kind is parameter.KEYWORD_ONLY
    ]


def strategy_class(name):
    """The class registered as ``name``, or a ValueError listing the names.

    Examples
    --------
    >>> strategy_class("halving").__name__
    'HalvingStrategy'
    """
    if not isinstance(name, str) or name not in REGISTRY:
        raise ValueError(f"strategy == {name!r}, must be one of {', '.join(REGISTRY)}.")
    module, _, attribute = REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), attribute)


def make_strategy(strategy, **options):
    """A strategy object from its name and the options it takes.

    ``options`` that the strategy does not take are dropped when None (the
    defaults of :func:`~course_lib.search.launch_search`); one it does not
    take, given a value, is refused by name.

    Parameters
    ----------
    strategy : str or SearchStrategy
        A name of :data:`REGISTRY`, or a strategy object (used as it is; then
        ``options`` must be empty or None).
    **options
        Settings, e.g. ``n_iter=10``.

    Returns
    -------
    SearchStrategy

    Examples
    --------
    >>> make_strategy("random", n_iter=3, factor=None).n_iter
    3
    >>> make_strategy("grid", patience=2)
    Traceback (most recent call last):
    ...
    TypeError: strategy='grid' takes no setting patience (it takes n_iter).
    """
    given = {name: value for name, value in options.items() if value is not None}
    if isinstance(strategy, SearchStrategy):
        if given:
            raise TypeError(
                f"strategy is a {type(strategy).__name__} object: set "
                f"{', '.join(sorted(given))} on it, not in launch_search."
            )
        return strategy
    cls = strategy_class(strategy)
    accepted = _init_parameters(cls)
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise TypeError(
            f"strategy={strategy!r} takes no setting {', '.join(unknown)} "
            f"(it takes {', '.join(accepted) or 'none'})."
        )
    return cls(**{name: value for name, value in given.items() if name in accepted})


def check_n_iter(n_iter, strategy, *, required):
    """``n_iter`` as an int >= 1, or None where allowed; the error names the strategy."""
    if n_iter is None:
        if required:
            raise ValueError(
                f"strategy={strategy!r} needs n_iter, the number of parameter sets to draw."
            )
        return None
    return check_int(n_iter, "n_iter", minimum=1)
