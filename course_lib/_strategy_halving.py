"""Successive halving: every candidate on a small resource, then the best on more."""

from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn.base import is_classifier
from sklearn.model_selection import ParameterGrid

from course_lib._search_plan import check_space
from course_lib._search_strategy import SearchStrategy, check_n_iter
from course_lib._strategy_random import draw_candidates
from course_lib._validation import check_int
from course_lib.splits import load_cv_split


def halving_plan(n_candidates, factor, min_resource, max_resource):
    """Resource and number of candidates of every round; the last uses ``max_resource``.

    As scikit-learn's ``HalvingGridSearchCV``, there are as many rounds as it
    takes to get down to fewer than ``factor`` candidates, but no more than
    the resource allows between ``min_resource`` and ``max_resource``. The
    rounds are counted back from ``max_resource``, so that the survivors are
    scored exactly as a full grid search would score them.

    >>> halving_plan(20, 3, 20, 1347)
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


class HalvingStrategy(SearchStrategy):
    """Rounds of growing resource; the best ``1/factor`` of a round go on to the next.

    Parameters
    ----------
    n_iter : int, optional
        Draw that many parameter sets (as ``"random"``) instead of the grid.
    factor : float, default=3
        Keep the best ``1/factor`` after each round, with ``factor`` times more resource.
    resource : str, default="n_samples"
        Training samples, or an integer parameter of the estimator (``"n_estimators"``).
    min_resource, max_resource : int, optional
        Smallest resource of any round, and the resource of the last one.
        Defaults: 20 samples (and 2 per class), or 1; every training sample,
        or the estimator's own value of the parameter.

    Examples
    --------
    >>> HalvingStrategy(resource="max_iter", max_resource=90).task({"C": 1.0}, 10)
    ({'C': 1.0, 'max_iter': 10}, None)
    """

    name = "halving"
    rounds_compare = False  # rounds differ in resource: their scores do not compare

    def __init__(
        self, *, n_iter=None, factor=3, resource="n_samples", min_resource=None, max_resource=None
    ):
        self.n_iter = check_n_iter(n_iter, self.name, required=False)
        self.factor = _check_factor(factor)
        self.resource = resource
        self.min_resource = min_resource
        self.max_resource = max_resource

    def candidates(self, param_space, random_state):
        if self.n_iter is None:
            return list(ParameterGrid(check_space(param_space)))
        return draw_candidates(param_space, self.n_iter, random_state)

    def plan(self, estimator, candidates, split_paths):
        resource = self.resource
        min_resource, max_resource = self.min_resource, self.max_resource
        limit = None
        if resource == "n_samples":
            limit = max(load_cv_split(path)[0].shape[0] for path in split_paths)
            if max_resource is None:
                max_resource = limit
            if min_resource is None:
                min_resource = 20
                if is_classifier(estimator):
                    classes = np.unique(np.asarray(load_cv_split(split_paths[0])[1]))
                    min_resource = max(min_resource, 2 * len(classes))
        else:
            max_resource = self._check_parameter_resource(estimator, candidates)
            min_resource = 1 if min_resource is None else min_resource
        max_resource = check_int(max_resource, "max_resource", minimum=1)
        min_resource = check_int(min_resource, "min_resource", minimum=1)
        if limit is not None and max_resource > limit:
            raise ValueError(
                f"max_resource == {max_resource} but the largest training split has "
                f"{limit} samples."
            )
        if min_resource > max_resource:
            raise ValueError(
                f"min_resource == {min_resource} is above max_resource == {max_resource}."
            )
        self._plan = halving_plan(len(candidates), self.factor, min_resource, max_resource)
        return self._plan

    def _check_parameter_resource(self, estimator, candidates):
        """The largest resource when it is an estimator parameter; refuses a wrong one."""
        resource, valid = self.resource, estimator.get_params(deep=True)
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
        if self.max_resource is not None:
            return self.max_resource
        largest = valid[resource]
        if isinstance(largest, bool) or not isinstance(largest, numbers.Integral):
            raise ValueError(
                f"{type(estimator).__name__}.{resource} == {largest!r} is not an "
                f"int to take as the largest resource: give max_resource."
            )
        return largest

    def next_round(self, index, history):
        if index == 0:
            return list(range(self._plan[0][1]))
        return history.ranked(index - 1)[: self._plan[index][1]]

    def task(self, params, n_resources):
        if self.resource == "n_samples":
            return params, n_resources
        return {**params, self.resource: n_resources}, None

    def columns(self, rows, plan):
        return {
            "iter": np.array([index for index, _ in rows]),
            "n_resources": np.array([plan[index][0] for index, _ in rows]),
        }
