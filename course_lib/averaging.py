"""Train one linear model per partition of the data, then average them.

A linear model predicts from ``X @ coef_.T + intercept_``. Models trained on
partitions of the same data learn similar weights, and their mean is a model
too: often about as good as one model trained on all the data, for a
fraction of the time, since the partitions train in parallel.

* :func:`train_on_partitions` has every engine of a cluster read its own
  partition of a CSV file from disk (only the file's path travels), vectorize
  it with a stateless vectorizer and fit a model.
* :func:`average_linear_models` averages the fitted models.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import scipy.sparse as sp

from course_lib._validation import check_file, check_int, raise_remote_file_not_found

__all__ = ["average_linear_models", "fit_partition", "train_on_partitions"]


def average_linear_models(models):
    """A new linear model whose weights are the mean of the given models'.

    Parameters
    ----------
    models : sequence of fitted estimators
        Linear models of one class (e.g. all ``Perceptron``, all
        ``SGDClassifier``, all ``LogisticRegression``, all ``Ridge``), fitted
        on the same features; classifiers with the same ``classes_``.

    Returns
    -------
    estimator
        A copy of ``models[0]`` whose ``coef_`` and ``intercept_`` are the
        means of the models'. The models given are left untouched.

    Raises
    ------
    ValueError
        If ``models`` is empty, or the models differ in class, ``classes_``
        or shapes, or one is not fitted.
    TypeError
        If a model is not a linear model (it has no ``coef_``).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import Perceptron
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]])
    >>> y = np.array([-1, 1, -1, 1])
    >>> a = Perceptron(random_state=0).fit(X[:2], y[:2])
    >>> b = Perceptron(random_state=0).fit(X[2:], y[2:])
    >>> mean = average_linear_models([a, b])
    >>> np.allclose(mean.coef_, (a.coef_ + b.coef_) / 2)
    True
    >>> mean.predict(X).tolist()
    [-1, 1, -1, 1]
    """
    from sklearn.base import BaseEstimator
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if isinstance(models, (BaseEstimator, str, bytes)) or not hasattr(models, "__iter__"):
        raise TypeError(
            f"models must be a list of fitted models, but got {models!r} (of type "
            f"{type(models).__name__}); a single model needs to be wrapped in a list."
        )
    models = list(models)
    if not models:
        raise ValueError("models is empty: there is nothing to average.")
    first = models[0]
    for i, model in enumerate(models):
        if type(model) is not type(first):
            raise ValueError(
                f"models must all be of one class: models[0] is a {type(first).__name__} "
                f"but models[{i}] is a {type(model).__name__}."
            )
        try:
            check_is_fitted(model)
        except NotFittedError as exc:
            raise ValueError(f"models[{i}] is not fitted: {exc}") from None
        except TypeError as exc:
            raise TypeError(f"models[{i}] is not an estimator: {exc}") from None
        if not hasattr(model, "coef_") or not hasattr(model, "intercept_"):
            raise TypeError(
                f"models[{i}] ({type(model).__name__}) has no coef_ and intercept_: only "
                "linear models can be averaged."
            )
        if hasattr(first, "classes_") and not np.array_equal(model.classes_, first.classes_):
            raise ValueError(
                f"models[{i}] has classes_ {model.classes_.tolist()} but models[0] has "
                f"{first.classes_.tolist()}: models trained on different classes cannot be "
                "averaged (did a partition miss a class?)."
            )
        if np.shape(model.coef_) != np.shape(first.coef_) or np.shape(model.intercept_) != np.shape(
            first.intercept_
        ):
            raise ValueError(
                f"models[{i}] has coef_ of shape {np.shape(model.coef_)} and intercept_ of "
                f"shape {np.shape(model.intercept_)}, but models[0] has "
                f"{np.shape(first.coef_)} and {np.shape(first.intercept_)}: were they "
                "trained on the same features?"
            )
    average = copy.deepcopy(first)
    average.coef_ = np.mean([_dense(m.coef_) for m in models], axis=0)
    intercept = np.mean([m.intercept_ for m in models], axis=0)
    # A scalar intercept_ (LinearRegression on one target) stays a float.
    average.intercept_ = float(intercept) if np.ndim(first.intercept_) == 0 else intercept
    return average


def _dense(coef):
    """coef_ as an ndarray (``sparsify()`` makes it a sparse matrix)."""
    return coef.toarray() if sp.issparse(coef) else np.asarray(coef)


def train_on_partitions(view, csv_path, n_partitions, make_model, vectorizer, max_count=None):
    """Fit one model per partition of a tweet CSV file, on the engines.

    Partition ``k`` is the rows whose index modulo ``n_partitions`` is ``k``
    (see :func:`course_lib.text.read_tweets`). Each task reads its partition
    from ``csv_path`` on the engine that runs it, shuffles it, vectorizes it
    and fits a new model: only the path, the vectorizer and the model factory
    are sent to the engines, and only the fitted models come back.

    Parameters
    ----------
    view : ipyparallel.DirectView or ipyparallel.LoadBalancedView
        The engines to use. Each engine needs the file at ``csv_path``.
    csv_path : str or path-like
        A Sentiment140-style CSV file, as the engines see it.
    n_partitions : int
        Number of partitions, hence of models; usually the number of engines.
    make_model : callable or estimator
        Makes a new, unfitted model on the engine: a class or function called
        without arguments (``Perceptron``, ``functools.partial(SGDClassifier,
        alpha=1e-5)``), or an estimator that is cloned.
    vectorizer : transformer
        One that needs no fitting, e.g. :func:`course_lib.text.make_hashing_vectorizer`,
        so that every partition gets the same features; or one already fitted.
    max_count : int, optional
        At most this many tweets per partition, balanced between classes.

    Returns
    -------
    list of estimators
        The fitted models, in partition order.

    Raises
    ------
    FileNotFoundError
        If an engine cannot find ``csv_path``.
    ValueError
        If the vectorizer would need fitting on each partition: the models
        would then have different features and could not be averaged.

    See Also
    --------
    average_linear_models : average the models returned.

    Examples
    --------
    >>> from sklearn.linear_model import Perceptron
    >>> from course_lib.cluster import local_cluster
    >>> from course_lib.text import make_hashing_vectorizer
    >>> with local_cluster(2) as client:  # doctest: +SKIP
    ...     models = train_on_partitions(client.load_balanced_view(), "tweets.csv",
    ...                                  2, Perceptron, make_hashing_vectorizer())
    >>> model = average_linear_models(models)  # doctest: +SKIP
    """
    import ipyparallel
    from sklearn.base import BaseEstimator

    if not isinstance(view, ipyparallel.client.view.View):
        raise TypeError(
            "view must be an ipyparallel view (client[:] or client.load_balanced_view()), "
            f"but got {view!r} (of type {type(view).__name__})."
        )
    check_file(csv_path, "csv_path", hint=" Every engine must see the file at that path.")
    csv_path = os.fspath(csv_path)
    n_partitions = check_int(n_partitions, "n_partitions", minimum=1)
    if not (isinstance(make_model, BaseEstimator) or callable(make_model)):
        raise TypeError(
            "make_model must be an estimator or a callable that returns one, but got "
            f"{make_model!r}."
        )
    _check_stateless(vectorizer)
    if max_count is not None:
        max_count = check_int(max_count, "max_count", minimum=1)

    n = int(n_partitions)
    result = view.map(
        fit_partition,
        [csv_path] * n,
        [n] * n,
        list(range(n)),
        [make_model] * n,
        [vectorizer] * n,
        [max_count] * n,
        block=False,
    )
    try:
        return list(result.get())
    except (ipyparallel.error.CompositeError, ipyparallel.error.RemoteError) as exc:
        raise_remote_file_not_found(exc, "csv_path", csv_path)
        raise


def fit_partition(csv_path, n_partitions, partition_id, make_model, vectorizer, max_count=None):
    """Read one partition, vectorize it, fit a new model: the engines' task.

    A module-level function, so that it is pickled by reference and imported
    on the engines. Called by :func:`train_on_partitions`.

    Returns
    -------
    estimator
        The fitted model.
    """
    from sklearn.base import BaseEstimator, clone
    from sklearn.utils import shuffle

    from course_lib.text import read_tweets

    texts, targets = read_tweets(
        csv_path, max_count=max_count, n_partitions=n_partitions, partition_id=partition_id
    )
    if len(texts) == 0:
        raise ValueError(
            f"partition {partition_id} of {n_partitions} of {csv_path} holds no tweet with "
            "polarity 0 or 4: use fewer partitions or a larger file."
        )
    # The file is sorted by polarity: models that do not shuffle need this.
    texts, targets = shuffle(texts, targets, random_state=partition_id)
    model = clone(make_model) if isinstance(make_model, BaseEstimator) else make_model()
    return model.fit(vectorizer.transform(texts), targets)


def _check_stateless(vectorizer):
    from sklearn.exceptions import NotFittedError
    from sklearn.utils import get_tags
    from sklearn.utils.validation import check_is_fitted

    if not callable(getattr(vectorizer, "transform", None)):
        raise TypeError(
            f"vectorizer must have a transform method, but got {vectorizer!r}; "
            "use course_lib.text.make_hashing_vectorizer()."
        )
    try:
        if not get_tags(vectorizer).requires_fit:
            return
        check_is_fitted(vectorizer)
    except NotFittedError:
        raise ValueError(
            f"vectorizer {vectorizer!r} needs fitting: fitted on each partition, it would "
            "give every model different features, and they could not be averaged. Use a "
            "stateless one, course_lib.text.make_hashing_vectorizer(), or fit it first."
        ) from None
