"""The random strategy: ``n_iter`` parameter sets drawn as RandomizedSearchCV draws them."""

from __future__ import annotations

from sklearn.model_selection import ParameterSampler
from sklearn.utils import check_random_state

from course_lib._search_plan import check_space
from course_lib._search_strategy import SearchStrategy, check_n_iter


def draw_candidates(param_space, n_iter, random_state):
    """``n_iter`` sets drawn as ``RandomizedSearchCV(random_state=...)`` draws them, shuffled.

    Drawn from lists only, they may come out in grid order; shuffled, a
    search cut short (abort, budget) has tried a spread of the space.

    >>> draw_candidates({"C": [1, 10, 100]}, 2, 0)
    [{'C': 100}, {'C': 10}]
    """
    rng = check_random_state(random_state)
    drawn = list(ParameterSampler(check_space(param_space), n_iter, random_state=rng))
    return [dict(sorted(drawn[i].items())) for i in rng.permutation(len(drawn))]


class RandomStrategy(SearchStrategy):
    """``n_iter`` sets drawn from lists or ``scipy.stats`` distributions, in one round.

    Parameters
    ----------
    n_iter : int
        How many parameter sets to draw (required).

    Examples
    --------
    >>> RandomStrategy(n_iter=2).candidates({"C": [1, 10, 100]}, random_state=0)
    [{'C': 100}, {'C': 10}]
    """

    name = "random"

    def __init__(self, *, n_iter=None):
        self.n_iter = check_n_iter(n_iter, self.name, required=True)

    def candidates(self, param_space, random_state):
        return draw_candidates(param_space, self.n_iter, random_state)
