"""The fourth strategy, ``"patient"``, on a real cluster against a brute-force reference.

The reference evaluates *every* parameter set of the same draw, one by one in
this process, then applies the stopping rule by hand: the search must have
run exactly the rounds the rule allows, with the same scores, and found the
best of what it ran, for fewer tasks than the brute force.
"""

import numpy as np
import pytest
from scipy.stats import loguniform
from sklearn.datasets import load_digits
from sklearn.model_selection import ShuffleSplit
from sklearn.svm import SVC

from course_lib.search import STRATEGIES, evaluate, launch_search, make_candidates
from course_lib.splits import persist_cv_splits

SPACE = {"C": loguniform(1e-2, 1e2), "gamma": loguniform(1e-4, 1e-1)}
N_ITER, BATCH, PATIENCE, SEED = 16, 4, 1, 3


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    X, y = load_digits(return_X_y=True)
    X, y = X[:600], y[:600]
    cv = list(ShuffleSplit(n_splits=3, test_size=0.25, random_state=0).split(X))
    return persist_cv_splits(X, y, cv, tmp_path_factory.mktemp("digits"))


def brute_force(paths):
    """Every candidate of the draw scored here, and the rounds the stopping rule allows."""
    candidates = make_candidates(SPACE, "random", n_iter=N_ITER, random_state=SEED)
    means = [
        np.mean([evaluate(path, SVC(), params)["test_score"] for path in paths])
        for params in candidates
    ]
    best, without, n_rounds = -np.inf, 0, 0
    for start in range(0, N_ITER, BATCH):
        n_rounds += 1
        round_best = max(means[start : start + BATCH])
        best, without = (round_best, 0) if round_best > best else (best, without + 1)
        if without >= PATIENCE:
            break
    return candidates, means, n_rounds


def test_patient_is_registered():
    assert "patient" in STRATEGIES


def test_patient_stops_where_the_brute_force_rule_says(client, paths):
    candidates, means, n_rounds = brute_force(paths)
    run = launch_search(
        client.load_balanced_view(),
        SVC(),
        SPACE,
        paths,
        strategy="patient",
        n_iter=N_ITER,
        random_state=SEED,
        strategy_params={"batch_size": BATCH, "patience": PATIENCE},
    )
    assert run.wait(timeout=600, progress_bar=False)
    assert run.errors == []
    ran = n_rounds * BATCH
    assert ran < N_ITER, "this draw must stop early, or the test proves little"
    # The same draw, the same order, and exactly the rounds the rule allows.
    assert run.candidates == candidates
    assert [r["status"] for r in run.rounds] == ["done"] * n_rounds
    assert sorted({r["candidate"] for r in run.results()}) == list(range(min(ran, N_ITER)))
    assert run.progress == 1.0 and run.n_tasks == min(ran, N_ITER) * len(paths)
    # The same scores as the brute force, and the best of what it ran.
    results = run.cv_results_
    np.testing.assert_allclose(results["mean_test_score"], means[: len(results["params"])])
    assert list(results["iter"]) == [i // BATCH for i in range(len(results["params"]))]
    expected = int(np.argmax(means[:ran]))
    assert run.best_params_ == candidates[expected]
    assert run.best_score_ == pytest.approx(means[expected])
    assert run.best(1)[0]["candidate"] == expected
    # Never better than the brute force over the whole budget.
    assert run.best_score_ <= max(means) + 1e-12
    assert f"stopped after {n_rounds} rounds" in run.report()


@pytest.mark.parametrize(
    "params, error, words",
    [
        ({"patience": 0}, ValueError, "patience == 0"),
        ({"batch_size": "4"}, TypeError, "batch_size must be an int"),
        ({"tol": -1}, ValueError, "tol == -1"),
        ({"factor": 3}, TypeError, "takes no setting factor"),
        ({"n_iter": 4}, TypeError, "n_iter given both"),
    ],
)
def test_patient_settings_are_checked_before_any_task(client, paths, params, error, words):
    view = client.load_balanced_view()
    history = len(client.history)
    with pytest.raises(error, match=words):
        launch_search(
            view, SVC(), SPACE, paths, strategy="patient", n_iter=4, strategy_params=params
        )
    assert len(client.history) == history
