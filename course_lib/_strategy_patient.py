"""A budgeted random search that stops when the best score has stopped moving."""

from __future__ import annotations

import math
import numbers

import numpy as np

from course_lib._search_strategy import SearchStrategy, check_n_iter
from course_lib._strategy_random import draw_candidates
from course_lib._validation import check_int


class PatientStrategy(SearchStrategy):
    """Random draws in rounds of ``batch_size``; stop when ``patience`` rounds gained nothing.

    The ``n_iter`` parameter sets are drawn as ``strategy="random"`` draws
    them (the budget), then evaluated ``batch_size`` at a time. After each
    round the best mean test score so far (over every round: they use the
    same resource) is compared with the best before it: a round *gains*
    when it raises the best by more than ``tol``. The search stops after
    ``patience`` rounds in a row without a gain, or when the budget is spent.

    Parameters
    ----------
    n_iter : int
        The budget: how many parameter sets to draw at most (required).
    batch_size : int, default=4
        Parameter sets per round. Give at least the number of engines, so
        that a round fills the cluster.
    patience : int, default=2
        Rounds in a row without a gain before the search stops.
    tol : float, default=0.0
        How much the best score must rise for a round to count as a gain.

    Examples
    --------
    >>> strategy = PatientStrategy(n_iter=10, batch_size=4)
    >>> strategy.plan(None, [{}] * 10, [])
    [(None, 4), (None, 4), (None, 2)]
    """

    name = "patient"

    def __init__(self, *, n_iter=None, batch_size=4, patience=2, tol=0.0):
        self.n_iter = check_n_iter(n_iter, self.name, required=True)
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.patience = check_int(patience, "patience", minimum=1)
        if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not tol >= 0:
            raise ValueError(f"tol == {tol!r}, must be a number >= 0.")
        self.tol = float(tol)

    def candidates(self, param_space, random_state):
        return draw_candidates(param_space, self.n_iter, random_state)

    def plan(self, estimator, candidates, split_paths):
        n, size = len(candidates), self.batch_size
        self._plan = [(None, min(size, n - i * size)) for i in range(math.ceil(n / size))]
        return self._plan

    def next_round(self, index, history):
        if index > 0 and self._rounds_without_gain(history) >= self.patience:
            return None
        start = index * self.batch_size
        return list(range(start, start + self._plan[index][1]))

    def _rounds_without_gain(self, history):
        """Rounds in a row, up to the last one run, that did not raise the best by > tol."""
        best, without = -np.inf, 0
        for index, chosen in enumerate(history.rounds):
            means = [history.scores(index, candidate).mean() for candidate in chosen]
            means = [mean for mean in means if not np.isnan(mean)]  # failed: no score
            if means and max(means) > best + self.tol:
                best, without = max(means), 0
            else:
                without += 1
        return without

    def stop_reason(self, history):
        ran = sum(len(chosen) for chosen in history.rounds)
        if ran == len(history.candidates):
            return ""
        return (
            f"stopped after {len(history.rounds)} rounds: the best score rose by no more than "
            f"{self.tol:g} in the last {self.patience}; {len(history.candidates) - ran} of the "
            f"{len(history.candidates)} parameter sets drawn were not needed."
        )

    def columns(self, rows, plan):
        return {"iter": np.array([index for index, _ in rows])}
