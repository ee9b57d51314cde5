"""course_lib.averaging: averaging linear models, training them on a real cluster."""

import copy
import functools

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import (
    LinearRegression,
    LogisticRegression,
    Perceptron,
    Ridge,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.tree import DecisionTreeClassifier

from course_lib.averaging import average_linear_models, fit_partition, train_on_partitions
from course_lib.datasets import make_tweet_corpus
from course_lib.text import make_hashing_vectorizer, read_tweets

PASSIVE_AGGRESSIVE = functools.partial(
    SGDClassifier, loss="hinge", penalty=None, learning_rate="pa1", eta0=1.0
)
CLASSIFIERS = {
    "perceptron": functools.partial(Perceptron, random_state=0),
    "sgd": functools.partial(SGDClassifier, random_state=0),
    "passive-aggressive": functools.partial(PASSIVE_AGGRESSIVE, random_state=0),
    "logistic": functools.partial(LogisticRegression, max_iter=500),
}
REGRESSORS = {
    "linear": LinearRegression,
    "ridge": Ridge,
    "sgd": functools.partial(SGDRegressor, random_state=0),
}


def _fit_on_thirds(make_model, X, y):
    return [make_model().fit(X[k::3], y[k::3]) for k in range(3)]


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_averaged_classifier_matches_a_hand_computation(name, n_classes):
    X, y = make_classification(
        n_samples=300, n_features=8, n_informative=5, n_classes=n_classes, random_state=0
    )
    models = _fit_on_thirds(CLASSIFIERS[name], X, y)
    before = [(m.coef_.copy(), np.copy(m.intercept_)) for m in models]
    average = average_linear_models(models)

    coef = np.mean([m.coef_ for m in models], axis=0)
    intercept = np.mean([m.intercept_ for m in models], axis=0)
    assert type(average) is type(models[0]) and average is not models[0]
    np.testing.assert_allclose(average.coef_, coef)
    by_hand = X @ coef.T + intercept
    if by_hand.shape[1] == 1:  # binary: one column of scores, returned flat
        by_hand = by_hand.ravel()
    np.testing.assert_allclose(average.decision_function(X), by_hand)
    # Linear models: the average's scores are the mean of the models' scores.
    mean_scores = np.mean([m.decision_function(X) for m in models], axis=0)
    np.testing.assert_allclose(average.decision_function(X), mean_scores, atol=1e-10)
    assert average.predict(X).shape == y.shape
    # The inputs are untouched.
    for model, (coef_before, intercept_before) in zip(models, before, strict=True):
        np.testing.assert_array_equal(model.coef_, coef_before)
        np.testing.assert_array_equal(model.intercept_, intercept_before)


@pytest.mark.parametrize("name", sorted(REGRESSORS))
def test_averaged_regressor_matches_a_hand_computation(name):
    X, y = make_regression(n_samples=300, n_features=6, noise=5.0, random_state=0)
    X = X / X.std(axis=0)
    models = _fit_on_thirds(REGRESSORS[name], X, y)
    average = average_linear_models(models)
    coef = np.mean([m.coef_ for m in models], axis=0)
    intercept = np.mean([m.intercept_ for m in models], axis=0)
    np.testing.assert_allclose(average.predict(X), X @ coef + intercept)
    assert np.ndim(average.intercept_) == np.ndim(models[0].intercept_)


def test_averaging_identical_models_changes_no_prediction():
    X, y = make_classification(n_samples=200, n_features=10, random_state=1)
    model = Perceptron(random_state=0).fit(X, y)
    average = average_linear_models([model, copy.deepcopy(model), model])
    np.testing.assert_array_equal(average.predict(X), model.predict(X))
    np.testing.assert_allclose(average.decision_function(X), model.decision_function(X))
    assert average.coef_ is not model.coef_


def test_sparsified_models_average_too():
    X, y = make_classification(n_samples=200, n_features=10, random_state=1)
    models = _fit_on_thirds(CLASSIFIERS["sgd"], X, y)
    dense = average_linear_models(models)
    for model in models:
        model.sparsify()
    np.testing.assert_allclose(average_linear_models(models).coef_, dense.coef_)


def test_an_empty_list_is_refused():
    with pytest.raises(ValueError, match="empty"):
        average_linear_models([])


def test_mismatched_models_are_refused():
    X, y = make_classification(n_samples=300, n_features=8, n_classes=3, n_informative=4)
    perceptron = Perceptron().fit(X, y)
    with pytest.raises(ValueError, match=r"models\[1\] is a SGDClassifier"):
        average_linear_models([perceptron, SGDClassifier().fit(X, y)])
    with pytest.raises(ValueError, match=r"models\[1\] has classes_ \[0, 1\]"):
        average_linear_models([perceptron, Perceptron().fit(X[y < 2], y[y < 2])])
    with pytest.raises(ValueError, match=r"models\[1\] has coef_ of shape \(3, 5\)"):
        average_linear_models([perceptron, Perceptron().fit(X[:, :5], y)])
    with pytest.raises(ValueError, match=r"models\[1\] is not fitted"):
        average_linear_models([perceptron, Perceptron()])


def test_non_linear_models_and_bare_models_are_refused():
    X, y = make_classification(n_samples=100, random_state=0)
    tree = DecisionTreeClassifier().fit(X, y)
    with pytest.raises(TypeError, match="only linear models"):
        average_linear_models([tree, tree])
    with pytest.raises(TypeError, match="wrapped in a list"):
        average_linear_models(Perceptron().fit(X, y))


# ---------------------------------------------------------------------------
# train_on_partitions, on the session's real 2-engine cluster
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("partitions")
    train = make_tweet_corpus(20_000, random_state=0, path=folder / "train.csv")
    test = make_tweet_corpus(5_000, random_state=1, path=folder / "test.csv")
    vectorizer = make_hashing_vectorizer()
    texts, targets = read_tweets(test)
    return train, vectorizer, vectorizer.transform(texts), targets


def test_partition_models_average_to_about_one_model_on_all_data(client, corpus):
    train_csv, vectorizer, X_test, y_test = corpus
    model = SGDClassifier(random_state=0)
    models = train_on_partitions(client.load_balanced_view(), train_csv, 2, model, vectorizer)
    assert len(models) == 2
    assert all(isinstance(m, SGDClassifier) and m is not model for m in models)
    assert not np.allclose(models[0].coef_, models[1].coef_)
    # Model 1 was trained on partition 1: the same fit, done here, agrees.
    local = fit_partition(train_csv, 2, 1, model, vectorizer)
    np.testing.assert_allclose(models[1].coef_, local.coef_)

    average = average_linear_models(models).score(X_test, y_test)
    texts, targets = read_tweets(train_csv)
    single = SGDClassifier(random_state=0).fit(vectorizer.transform(texts), targets)
    single = single.score(X_test, y_test)
    assert single > 0.7
    assert abs(average - single) <= 0.02, (average, single)


def test_more_partitions_than_engines_on_a_direct_view(client, corpus):
    train_csv, vectorizer, X_test, y_test = corpus
    models = train_on_partitions(
        client[:], str(train_csv), 3, Perceptron, vectorizer, max_count=1000
    )
    assert len(models) == 3
    # max_count tweets per partition: Perceptron counts the samples it saw.
    assert all(m.t_ == m.n_iter_ * 1000 + 1 for m in models)
    assert average_linear_models(models).score(X_test, y_test) > 0.6


def test_a_missing_file_is_refused_before_any_task(client, corpus, tmp_path):
    _, vectorizer, _, _ = corpus
    missing = tmp_path / "missing.csv"
    history = len(client.history)
    with pytest.raises(FileNotFoundError, match="missing.csv' does not exist. Every engine"):
        train_on_partitions(client.load_balanced_view(), missing, 2, Perceptron, vectorizer)
    assert len(client.history) == history


def test_a_vectorizer_that_needs_fitting_is_refused(client, corpus):
    train_csv, _, _, _ = corpus
    with pytest.raises(ValueError, match="needs fitting"):
        train_on_partitions(client[:], train_csv, 2, Perceptron, TfidfVectorizer())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"view": "engines"}, TypeError, "'engines'"),
        ({"n_partitions": 0}, ValueError, "n_partitions == 0"),
        ({"make_model": "Perceptron"}, TypeError, "'Perceptron'"),
        ({"max_count": 0}, ValueError, "max_count == 0"),
        ({"csv_path": 3}, TypeError, "3"),
    ],
)
def test_train_on_partitions_validates_arguments(client, corpus, kwargs, error, match):
    train_csv, vectorizer, _, _ = corpus
    arguments = {
        "view": client[:],
        "csv_path": train_csv,
        "n_partitions": 2,
        "make_model": Perceptron,
        "vectorizer": vectorizer,
        **kwargs,
    }
    with pytest.raises(error, match=match):
        train_on_partitions(**arguments)
