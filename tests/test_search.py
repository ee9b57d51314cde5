"""course_lib.search against real local clusters.

Tasks that must still be running when the test looks (best() mid-search,
abort, an engine killed mid-task) wait on a *gate*: a file the test creates
when it is ready. No assertion depends on how fast anything runs.
"""

import json
import os
import re
import time
import uuid
from pathlib import Path

import numpy as np
import psutil
import pytest
from numpy.testing import assert_allclose
from scipy.stats import loguniform, uniform
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, ShuffleSplit
from sklearn.svm import SVC

from course_lib._strategy_halving import halving_plan as _halving_plan
from course_lib.cluster import cluster_processes, local_cluster
from course_lib.search import (
    _subsample_rows,
    evaluate,
    launch_search,
    make_candidates,
)
from course_lib.splits import load_cv_split, persist_cv_splits

# --------------------------------------------------------------------------
# Estimators for the tests (module level: engines import them by name)
# --------------------------------------------------------------------------


class GatedClassifier(ClassifierMixin, BaseEstimator):
    """Predicts the majority class; its fit can wait for a gate file.

    ``started_dir``: fit first writes a file named after its process id
    there, so that a test knows which engine is busy with a task.
    """

    def __init__(self, gate=None, started_dir=None, tag=0):
        self.gate = gate
        self.started_dir = started_dir
        self.tag = tag

    def fit(self, X, y):
        if self.started_dir is not None:
            Path(self.started_dir, f"{os.getpid()}-{uuid.uuid4().hex}").touch()
        if self.gate is not None:
            deadline = time.monotonic() + 120  # never hang the test suite
            while not os.path.exists(self.gate):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"gate {self.gate} never opened")
                time.sleep(0.02)
        values, counts = np.unique(y, return_counts=True)
        self.classes_ = values
        self.majority_ = values[np.argmax(counts)]
        return self

    def predict(self, X):
        return np.full(X.shape[0], self.majority_)


class EchoClassifier(ClassifierMixin, BaseEstimator):
    """Scores ``level + budget / 1000`` whatever the data: results tell what ran."""

    def __init__(self, level=0.0, budget=10):
        self.level = level
        self.budget = budget

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def score(self, X, y):
        return self.level + self.budget / 1000


# --------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    """Half of digits (fast fits) and 3 shuffle splits: (X, y, cv)."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:900], y[:900]
    cv = list(ShuffleSplit(n_splits=3, test_size=0.25, random_state=0).split(X))
    return X, y, cv


@pytest.fixture(scope="module")
def paths(digits, tmp_path_factory):
    X, y, cv = digits
    return persist_cv_splits(X, y, cv, tmp_path_factory.mktemp("digits"))


@pytest.fixture
def view(client):
    """A load-balanced view; afterwards the shared cluster has nothing queued."""
    yield client.load_balanced_view()
    if client.outstanding:  # a failed test: cancel its tasks, let the rest end
        client.abort(list(client.outstanding))
        client.wait(timeout=150)
    assert not client.outstanding


def wait_until(condition, timeout=120):
    """Poll until condition() holds; fail (not hang) after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.02)


# --------------------------------------------------------------------------
# Candidates and the task, without a cluster
# --------------------------------------------------------------------------


def test_candidates_are_deterministic_and_indexable():
    space = {"gamma": [0.01, 0.1, 1.0], "C": [1, 10, 100, 1000]}
    grid = make_candidates(space)
    assert len(grid) == 12 and grid[0] == {"C": 1, "gamma": 0.01}
    assert all(list(c) == ["C", "gamma"] for c in grid)  # sorted keys
    drawn = make_candidates(space, "random", n_iter=12, random_state=3)
    assert drawn == make_candidates(space, "random", n_iter=12, random_state=3)
    assert drawn != grid and list(drawn[0]) == ["C", "gamma"]  # random order...
    assert sorted(drawn, key=lambda c: (c["C"], c["gamma"])) == grid  # ...without repeats
    continuous = make_candidates({"C": uniform(1, 2)}, "random", n_iter=4, random_state=0)
    assert len(continuous) == 4 and all(1 <= c["C"] <= 3 for c in continuous)


def test_evaluate_is_a_plain_fit_and_score(paths):
    X_train, y_train, X_test, y_test = load_cv_split(paths[0])
    expected = SVC(C=10.0, gamma=1e-3).fit(X_train, y_train).score(X_test, y_test)
    result = evaluate(paths[0], SVC(), {"C": 10.0, "gamma": 1e-3}, return_train_score=True)
    assert result["test_score"] == expected
    assert result["params"] == {"C": 10.0, "gamma": 1e-3}
    assert result["n_train_samples"] == X_train.shape[0]
    assert result["pid"] == os.getpid() and result["fit_time"] > 0
    assert 0.9 < result["train_score"] <= 1.0

    small = evaluate(paths[0], SVC(), {}, n_train_samples=100)
    assert small["n_train_samples"] == 100
    # Halving's subsamples are nested: a smaller one is part of a larger one.
    assert set(_subsample_rows(500, 100)) <= set(_subsample_rows(500, 300))


def test_halving_plan_ends_at_the_full_resource():
    assert _halving_plan(20, 3, 20, 1347) == [(149, 20), (449, 7), (1347, 3)]
    assert _halving_plan(1, 3, 20, 1347) == [(1347, 1)]
    # Too little resource for every round: fewer rounds, more survivors.
    assert _halving_plan(81, 3, 300, 1000) == [(333, 81), (1000, 27)]


# --------------------------------------------------------------------------
# Grid search on the shared 2-engine cluster
# --------------------------------------------------------------------------


def test_grid_equals_gridsearchcv(view, digits, paths, capsys):
    X, y, cv = digits
    space = {"C": [0.1, 1.0, 10.0], "gamma": [1e-4, 1e-3, 1e-2]}
    run = launch_search(view, SVC(), space, paths)
    assert run.wait(progress_bar=True) is True
    assert "grid search" in capsys.readouterr().err  # the tqdm bar

    expected = GridSearchCV(SVC(), space, cv=cv, refit=False).fit(X, y).cv_results_
    got = run.cv_results_
    assert got["params"] == expected["params"]
    for key in ["mean_test_score", "std_test_score"] + [f"split{i}_test_score" for i in range(3)]:
        assert_allclose(got[key], expected[key], rtol=0, atol=1e-12, err_msg=key)
    assert_allclose(got["param_C"], expected["param_C"])
    assert (got["rank_test_score"] == expected["rank_test_score"]).all()
    assert run.best_params_ == expected["params"][int(np.argmin(expected["rank_test_score"]))]
    assert run.progress == 1.0 and run.done and not run.errors
    assert run.n_submitted == run.n_tasks == 27
    assert {r["engine_id"] for r in run.results()} <= set(view.client.ids)
    assert "Best: mean test score" in run.report()


def test_progress_rises_to_one(view, paths):
    run = launch_search(view, SVC(), {"C": [0.1, 1.0, 10.0, 100.0]}, paths)
    seen = [run.progress]
    while not run.done:
        seen.append(run.progress)
        time.sleep(0.01)
    seen.append(run.progress)
    assert seen == sorted(seen)
    assert seen[-1] == 1.0
    assert len(run.results()) == 12


def gated_search(view, paths, gate, **kwargs):
    """4 candidates x 3 splits: the 6 tasks of tag 0 and 1 run at once, the rest wait."""
    space = {"gate": [None, str(gate)], "tag": [0, 1]}
    return launch_search(view, GatedClassifier(), space, paths, **kwargs)


def _bar_figures(text):
    """(elapsed seconds, tasks per second) from the last state of a tqdm bar."""
    last = text.replace("\r", "\n").strip().splitlines()[-1]
    found = re.search(r"\[(\d+):(\d+)<[^,]*,\s*([\d.]+)(task/s|s/task)\]", last)
    assert found, last
    minutes, seconds, value, unit = found.groups()
    rate = float(value) if unit == "task/s" else 1 / float(value)
    return 60 * int(minutes) + int(seconds), rate


def test_progress_bar_is_timed_from_the_launch(view, paths, tmp_path, capsys):
    """A bar shown after the search ran shows the search's time, not "00:00, 201 task/s"."""
    gate = tmp_path / "gate"
    run = launch_search(view, GatedClassifier(gate=str(gate)), {"tag": [0, 1]}, paths)
    time.sleep(2.0)  # the search lasts at least this long
    gate.touch()
    assert run.wait(timeout=120, progress_bar=False)
    time.sleep(1.0)  # the notebook did something else before looking
    assert run.wait(timeout=120)
    elapsed, rate = _bar_figures(capsys.readouterr().err)
    assert elapsed >= 2
    assert rate <= run.n_tasks / 2.0


def test_best_answers_while_tasks_still_run(view, paths, tmp_path):
    gate = tmp_path / "gate"
    run = gated_search(view, paths, gate)
    wait_until(lambda: run.progress >= 0.5)
    try:
        assert not run.done
        assert run.progress == 0.5  # the gated half cannot finish
        best = run.best()
        assert [row["params"]["gate"] for row in best] == [None, None]
        assert all(row["n_splits"] == 3 for row in best)
        assert "running" in run.report() and "Best so far" in run.report()
    finally:
        gate.touch()
    assert run.wait(timeout=120, progress_bar=False)
    assert run.progress == 1.0


def test_abort_keeps_finished_results(view, paths, tmp_path):
    gate = tmp_path / "gate"
    run = gated_search(view, paths, gate)
    wait_until(lambda: run.progress >= 0.5)
    finished = {(r["candidate"], r["split"]) for r in run.results()}
    try:
        run.abort()
    finally:
        gate.touch()
    assert run.wait(timeout=120, progress_bar=False)
    after = {(r["candidate"], r["split"]) for r in run.results()}
    assert len(finished) == 6 and finished <= after
    # At most one gated task per engine was running and may have finished.
    assert run.n_aborted >= 6 - len(view.client.ids)
    assert len(after) + run.n_aborted == run.n_tasks
    assert run.progress < 1.0 and run.done
    assert "aborted" in run.report()
    assert not view.client.outstanding


def test_fit_error_goes_to_errors_and_the_rest_completes(view, paths):
    run = launch_search(view, SVC(), {"C": [-1.0, 1.0, 10.0]}, paths, retries=1)
    assert run.wait(timeout=120, progress_bar=False)
    assert run.progress == 1.0
    errors = run.errors
    assert len(errors) == 3 and len(run.results()) == 6
    for error in errors:
        assert error["params"] == {"C": -1.0}
        assert "C" in error["error"] and "InvalidParameterError" in error["error"]
        assert "Traceback" in error["traceback"] and "\x1b[" not in error["traceback"]
    assert run.n_submitted == 9  # a user error is not retried
    results = run.cv_results_
    assert np.isnan(results["mean_test_score"][0]) and results["rank_test_score"][0] == 3
    assert run.best_params_ != {"C": -1.0}
    assert "Error on split" in run.report()


def test_engine_killed_mid_search(paths, tmp_path, assert_all_gone):
    with local_cluster(3) as rc:
        family = [p.pid for p in cluster_processes(rc.cluster)]
        view = rc.load_balanced_view()

        def kill_a_busy_engine(run, started):
            wait_until(lambda: any(started.iterdir()))
            victim = int(next(started.iterdir()).name.split("-")[0])
            psutil.Process(victim).kill()
            return victim

        # retries=1: the task that was running on the dead engine runs again.
        started, gate = tmp_path / "started1", tmp_path / "gate1"
        started.mkdir()
        space = {"gate": [str(gate)], "started_dir": [str(started)], "tag": [0, 1, 2, 3]}
        run = launch_search(view, GatedClassifier(), space, paths, retries=1)
        try:
            victim = kill_a_busy_engine(run, started)
        finally:
            gate.touch()
        assert run.wait(timeout=120, progress_bar=False)
        assert not run.errors
        assert len(run.results()) == run.n_tasks == 12
        assert run.n_submitted == 13
        assert victim not in {r["pid"] for r in run.results()}

        # retries=0: the lost task is reported, the others complete.
        started, gate = tmp_path / "started2", tmp_path / "gate2"
        started.mkdir()
        space = {"gate": [str(gate)], "started_dir": [str(started)], "tag": [0, 1]}
        run = launch_search(view, GatedClassifier(), space, paths, retries=0)
        try:
            kill_a_busy_engine(run, started)
        finally:
            gate.touch()
        assert run.wait(timeout=120, progress_bar=False)
        assert [e["error"].split(":")[0] for e in run.errors] == ["EngineError"]
        assert len(run.results()) == 5 and run.progress == 1.0
    assert_all_gone(family)


# --------------------------------------------------------------------------
# Journal
# --------------------------------------------------------------------------


def test_journal_resumes_only_missing_tasks(view, digits, paths, tmp_path):
    journal = tmp_path / "search.jsonl"
    space = {"C": [0.1, 1.0, 10.0], "gamma": [1e-3, 1e-2]}
    first = launch_search(view, SVC(), space, paths, journal=journal)
    assert first.wait(timeout=120, progress_bar=False)
    lines = journal.read_text().splitlines()
    assert len(lines) == 1 + 18
    assert json.loads(lines[0])["format"] == "course_lib.search journal"

    # A crash: 10 results written, the 11th torn in the middle.
    journal.write_text("\n".join(lines[:11]) + "\n" + lines[11][:25])
    with pytest.warns(UserWarning, match="removed a torn last line of 25 bytes"):
        resumed = launch_search(view, SVC(), space, paths, journal=journal)
    assert resumed.wait(timeout=120, progress_bar=False)
    assert resumed.n_submitted == 8
    assert resumed.progress == 1.0
    assert_allclose(
        resumed.cv_results_["mean_test_score"], first.cv_results_["mean_test_score"], atol=1e-12
    )
    lines = journal.read_text().splitlines()
    assert len(lines) == 19 and all(json.loads(line) for line in lines)

    again = launch_search(view, SVC(), space, paths, journal=journal)
    assert again.done and again.n_submitted == 0 and len(again.results()) == 18
    assert again.best_params_ == first.best_params_
    # The same splits persisted again elsewhere are the same splits.
    X, y, cv = digits
    moved = persist_cv_splits(X, y, cv, tmp_path / "elsewhere")
    assert launch_search(view, SVC(), space, moved, journal=journal).n_submitted == 0

    history = len(view.client.history)
    with pytest.raises(ValueError, match="another search"):
        launch_search(view, SVC(), {"C": [0.1, 1.0]}, paths, journal=journal)
    with pytest.raises(ValueError, match="another search"):
        launch_search(view, SVC(), space, paths[:2], journal=journal)
    with pytest.raises(ValueError, match="another search"):
        launch_search(view, SVC(kernel="linear"), space, paths, journal=journal)
    # Another kind of file is refused and left as it was, whatever its last byte.
    for text in ("shopping list\n", '{"results": [1, 2]}', '{"a": 1}\n{"b": 2}\n', "x"):
        not_a_journal = tmp_path / "results.json"
        not_a_journal.write_text(text)
        with pytest.raises(ValueError, match="not a search journal.*left unchanged"):
            launch_search(view, SVC(), space, paths, journal=not_a_journal)
        assert not_a_journal.read_text() == text
    assert len(view.client.history) == history


def test_journal_is_appended_only_when_empty_or_of_this_search(view, paths, tmp_path):
    space = {"C": [1.0, 10.0]}
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    run = launch_search(view, SVC(), space, paths, journal=empty)
    assert run.wait(timeout=120, progress_bar=False)
    lines = empty.read_text().splitlines()
    assert len(lines) == 1 + 6
    # The header alone, cut before its newline: resumed, on lines of its own.
    empty.write_text(lines[0])
    run = launch_search(view, SVC(), space, paths, journal=empty)
    assert run.wait(timeout=120, progress_bar=False) and run.n_submitted == 6
    assert all(json.loads(line) for line in empty.read_text().splitlines())
    # A folder, or a file in a missing folder: refused, nothing created.
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        launch_search(view, SVC(), space, paths, journal=tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        launch_search(view, SVC(), space, paths, journal=tmp_path / "no" / "j.jsonl")
    assert not (tmp_path / "no").exists()


# --------------------------------------------------------------------------
# Halving
# --------------------------------------------------------------------------


def test_halving_gets_close_to_the_grid_with_less_work(view, paths, tmp_path):
    space = {"C": [0.1, 1.0, 10.0, 100.0], "gamma": np.logspace(-4, 0, 5)}
    grid = launch_search(view, SVC(), space, paths)
    halving = launch_search(view, SVC(), space, paths, strategy="halving", journal=tmp_path / "j")
    assert grid.wait(timeout=300, progress_bar=False)
    assert halving.wait(timeout=300, progress_bar=False)

    rounds = halving.rounds
    assert [r["n_candidates"] for r in rounds] == [20, 7, 3]
    assert all(r["status"] == "done" for r in rounds)
    n_train = load_cv_split(paths[0])[0].shape[0]
    assert rounds[-1]["n_resources"] == n_train
    assert halving.n_submitted == halving.n_tasks == 3 * (20 + 7 + 3)
    assert halving.best_score_ >= grid.best_score_ - 0.005  # within half a point

    # Less work: far fewer training samples fitted than the grid fits.
    fitted = sum(r["n_train_samples"] for r in halving.results())
    assert fitted < 0.6 * sum(r["n_train_samples"] for r in grid.results())
    # The last round scores its survivors exactly as the grid does.
    grid_scores = {r["candidate"]: r for r in grid.best(20)}
    for row in halving.best(3):
        assert row["mean_test_score"] == pytest.approx(
            grid_scores[row["candidate"]]["mean_test_score"], abs=1e-12
        )
    results = halving.cv_results_
    assert list(np.unique(results["n_resources"])) == [r["n_resources"] for r in rounds]
    assert "round 2" in halving.report()

    # Resumed from its journal, the search replays every round without a task.
    again = launch_search(view, SVC(), space, paths, strategy="halving", journal=tmp_path / "j")
    assert again.done and again.n_submitted == 0
    assert again.best_params_ == halving.best_params_


def test_halving_over_an_estimator_parameter(view, paths):
    space = {"level": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]}
    estimator = EchoClassifier(budget=27)
    run = launch_search(view, estimator, space, paths, strategy="halving", resource="budget")
    assert run.wait(timeout=120, progress_bar=False)
    assert [(r["n_resources"], r["n_candidates"]) for r in run.rounds] == [(3, 9), (9, 3), (27, 1)]
    for record in run.results():
        expected = record["params"]["level"] + record["n_resources"] / 1000
        assert record["test_score"] == pytest.approx(expected)
    assert run.best_params_ == {"level": 0.9}


# --------------------------------------------------------------------------
# Errors at the door, before any task
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"param_space": {}}, ValueError, "empty"),
        ({"param_space": {"C": []}}, ValueError, "'C'"),
        ({"param_space": {"kernel_size": [1]}}, ValueError, "kernel_size"),
        ({"split_paths": ["/nonexistent/split0.joblib"]}, FileNotFoundError, "split0"),
        ({"split_paths": [__file__]}, ValueError, "not a CV split"),
        ({"strategy": "random", "n_iter": 0}, ValueError, "n_iter == 0"),
        ({"strategy": "random"}, ValueError, "n_iter"),
        ({"strategy": "bayesian"}, ValueError, "'bayesian'"),
        ({"strategy": "halving", "resource": "n_trees"}, ValueError, "'n_trees'"),
        (
            {"strategy": "halving", "resource": "C", "param_space": {"gamma": [0.1, 1.0]}},
            ValueError,
            "max_resource",
        ),
        (
            {"strategy": "halving", "resource": "max_iter", "param_space": {"max_iter": [10]}},
            ValueError,
            "also in param_space",
        ),
        ({"strategy": "halving", "factor": 1}, ValueError, "factor == 1"),
        ({"strategy": "halving", "max_resource": 10**6}, ValueError, "1000000"),
        ({"scoring": "no_such_metric"}, ValueError, "no_such_metric"),
        ({"retries": -1}, ValueError, "retries == -1"),
        ({"estimator": SVC}, TypeError, r"SVC\(\)"),
        ({"strategy": "random", "n_iter": 2, "journal": "j.jsonl"}, ValueError, "random_state"),
    ],
)
def test_bad_input_is_refused_before_any_task(view, paths, change, error, match):
    arguments = {
        "estimator": SVC(max_iter=-1),
        "param_space": {"C": [1.0, 10.0]},
        "split_paths": paths,
    }
    arguments.update(change)
    history = len(view.client.history)
    with pytest.raises(error, match=match):
        launch_search(view, arguments.pop("estimator"), arguments.pop("param_space"), **arguments)
    assert len(view.client.history) == history


def test_a_direct_view_is_refused(client, paths):
    with pytest.raises(TypeError, match="load_balanced_view"):
        launch_search(client[:], SVC(), {"C": [1.0]}, paths)


# --------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------


def test_boxplot_parameters_one_panel_per_parameter(view, paths):
    import matplotlib

    matplotlib.use("Agg")  # here, not at the top: engines import this module too
    import matplotlib.pyplot as plt

    space = {"C": [1.0, 10.0], "gamma": [1e-3, 1e-2, 1e-1]}
    run = launch_search(view, SVC(), space, paths, return_train_score=True)
    assert run.wait(timeout=120, progress_bar=False)
    fig = run.boxplot_parameters()
    assert len(fig.axes) == 2
    assert [len(ax.get_xticklabels()) for ax in fig.axes] == [2, 3]
    plt.close(fig)
    fig = run.boxplot_parameters(display_train=True)
    assert len(fig.axes) == 2
    plt.close(fig)

    # Continuous values from a random search are grouped into a few boxes.
    space = {"level": uniform(0, 1), "budget": [1, 2]}
    run = launch_search(
        view, EchoClassifier(), space, paths, strategy="random", n_iter=16, random_state=0
    )
    assert run.wait(timeout=120, progress_bar=False)
    fig = run.boxplot_parameters()
    assert len(fig.axes) == 2
    assert [len(ax.get_xticklabels()) for ax in fig.axes] == [2, 8]
    plt.close(fig)
    with pytest.raises(ValueError, match="return_train_score"):
        run.boxplot_parameters(display_train=True)

    # Over a log distribution, the bins are of equal width on a log scale.
    space = {"level": loguniform(1e-3, 1e1)}
    run = launch_search(
        view, EchoClassifier(), space, paths, strategy="random", n_iter=40, random_state=0
    )
    assert run.wait(timeout=120, progress_bar=False)
    fig = run.boxplot_parameters()
    (ax,) = fig.axes
    assert ax.get_xlabel() == "level (log-spaced bins)"
    labels = [label.get_text() for label in ax.get_xticklabels()]
    assert 5 <= len(labels) <= 8
    edges = [float(edge) for label in labels for edge in label.split(" to ")]
    ratios = [hi / lo for lo, hi in zip(edges[::2], edges[1::2], strict=True)]
    assert max(ratios) < 1.5 * min(ratios)  # equal widths in log, up to the 2-digit labels
    plt.close(fig)
