"""The grid strategy: every combination of the parameter lists, in one round."""

from __future__ import annotations

from sklearn.model_selection import ParameterGrid

from course_lib._search_plan import check_space
from course_lib._search_strategy import SearchStrategy


class GridStrategy(SearchStrategy):
    """Every combination, in :class:`~sklearn.model_selection.ParameterGrid` order.

    Parameters
    ----------
    n_iter : None
        Refused: a grid evaluates every combination (``strategy="random"``
        draws ``n_iter`` of them).

    Examples
    --------
    >>> GridStrategy().candidates({"gamma": [0.1], "C": [1, 10]}, None)
    [{'C': 1, 'gamma': 0.1}, {'C': 10, 'gamma': 0.1}]
    """

    name = "grid"

    def __init__(self, *, n_iter=None):
        if n_iter is not None:
            raise ValueError(
                f"n_iter == {n_iter!r} but strategy='grid' evaluates every combination; "
                f"use strategy='random' to draw n_iter of them."
            )
        self.n_iter = None

    def candidates(self, param_space, random_state):
        return list(ParameterGrid(check_space(param_space)))
