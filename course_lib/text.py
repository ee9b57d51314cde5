"""Text classification at scale: read tweets, stream them, learn out of core.

* :func:`read_tweets` reads texts and labels from a Sentiment140-style CSV
  file, optionally one partition of it (the rows whose index modulo
  ``n_partitions`` is ``partition_id``), so that each engine of a cluster
  reads its own share of the file from disk.
* :class:`TweetStream` is an endless, seeded source of labelled tweets, as a
  live stream of tweets would be.
* :func:`make_hashing_vectorizer` builds the course's stateless vectorizer:
  it needs no fitting, so engines and batches can share it.
* :func:`train_online` trains a classifier with ``partial_fit`` on batches
  from a stream, never holding more than one batch, and scores it on a
  validation set as it goes; :func:`plot_learning_curve` draws the result.
"""

from __future__ import annotations

import csv
import sys
import warnings

import numpy as np
import scipy.sparse as sp

from course_lib._validation import check_file, check_int

__all__ = [
    "ENCODING",
    "HASHING_DEFAULTS",
    "MalformedRowsWarning",
    "TweetStream",
    "make_hashing_vectorizer",
    "plot_learning_curve",
    "read_tweets",
    "train_online",
]

# Sentiment140's polarity column: 0 negative, 2 neutral, 4 positive. Only
# the strong polarities are read, as targets -1 and +1.
_TARGETS = {"0": -1, "4": 1}
_VALID_POLARITIES = {"0", "2", "4"}
_N_FIELDS = 6
# Sentiment140 is latin-1: its bytes are not all valid UTF-8.
ENCODING = "latin-1"


class MalformedRowsWarning(UserWarning):
    """Some rows of a tweet CSV file could not be read and were skipped.

    The number skipped is in the message and in the ``n_rows`` attribute.
    """

    def __init__(self, message, n_rows=0):
        super().__init__(message)
        self.n_rows = n_rows

    def __reduce__(self):
        # Raised on an engine (warnings as errors), it travels back pickled.
        return type(self), (self.args[0], self.n_rows)


def read_tweets(csv_path, max_count=None, n_partitions=1, partition_id=0):
    """Read texts and targets from a Sentiment140-style CSV file.

    Only strong polarities are kept: 0 (negative) becomes -1 and 4
    (positive) becomes +1; neutral tweets (2) are skipped. Malformed rows (a
    wrong number of fields, an unknown polarity, a line the CSV parser
    rejects) are skipped and counted: a :class:`MalformedRowsWarning` reports
    how many.

    Parameters
    ----------
    csv_path : str or path-like
        A CSV file without header, in the layout of
        :data:`course_lib.datasets.FIELDNAMES`, encoded in latin-1.
    max_count : int, optional
        Read at most this many tweets, balanced: ``max_count // 2`` negative
        and the rest positive (fewer if the file or partition runs out).
        Reading stops as soon as both are reached. Default: every tweet.
    n_partitions : int, default=1
        Number of partitions the file's rows are split into: row ``i``
        (counting every row, malformed or neutral ones included) belongs to
        partition ``i % n_partitions``. The partitions cover every row once.
    partition_id : int, default=0
        Which partition to read, from 0 to ``n_partitions - 1``.

    Returns
    -------
    texts : list of str
        The tweets, in the file's order.
    targets : ndarray of shape (len(texts),), dtype int64
        -1 (negative) or +1 (positive).

    Raises
    ------
    FileNotFoundError
        If ``csv_path`` does not exist.
    ValueError
        If the file is not a tweets CSV (a binary file, another table): none
        of its first rows has the six fields and a polarity of 0, 2 or 4.
        Checked before anything is read.

    Warns
    -----
    MalformedRowsWarning
        If malformed rows of the partition were skipped.

    See Also
    --------
    course_lib.datasets.fetch_sentiment140, course_lib.datasets.make_tweet_corpus

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from course_lib.datasets import make_tweet_corpus
    >>> csv_path = make_tweet_corpus(1000, path=Path(tempfile.mkdtemp()) / "t.csv")
    >>> texts, targets = read_tweets(csv_path, max_count=100)
    >>> len(texts), int((targets == 1).sum()), int((targets == -1).sum())
    (100, 50, 50)
    >>> texts, targets = read_tweets(csv_path, n_partitions=4, partition_id=3)
    """
    path = _check_csv_path(csv_path)
    _check_tweets_start(path, csv_path)
    max_count = None if max_count is None else check_int(max_count, "max_count", minimum=1)
    n_partitions = check_int(n_partitions, "n_partitions", minimum=1)
    partition_id = check_int(partition_id, "partition_id", minimum=0)
    if partition_id >= n_partitions:
        raise ValueError(
            f"partition_id == {partition_id}, must be < n_partitions == {n_partitions}."
        )
    if max_count is None:
        wanted = {-1: np.inf, 1: np.inf}
    else:
        wanted = {-1: max_count // 2, 1: max_count - max_count // 2}
    counts = {-1: 0, 1: 0}
    texts, targets = [], []
    n_malformed = 0
    with open(path, encoding=ENCODING, newline="") as handle:
        reader = csv.reader(handle)
        row_index = -1
        while counts[-1] < wanted[-1] or counts[1] < wanted[1]:
            row_index += 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error:
                # The parser has moved past the bad line: count it, go on.
                n_malformed += row_index % n_partitions == partition_id
                continue
            if row_index % n_partitions != partition_id:
                continue
            if len(row) != _N_FIELDS or row[0] not in _VALID_POLARITIES:
                n_malformed += 1
                continue
            target = _TARGETS.get(row[0])
            if target is None or counts[target] >= wanted[target]:
                continue
            counts[target] += 1
            texts.append(row[5])
            targets.append(target)
    if n_malformed:
        where = f" in partition {partition_id} of {n_partitions}" if n_partitions > 1 else ""
        warnings.warn(
            MalformedRowsWarning(
                f"Skipped {n_malformed} malformed row(s) of {path}{where}: not 6 fields, "
                "a polarity other than 0, 2 or 4, or a line the CSV parser rejects.",
                n_malformed,
            ),
            stacklevel=2,
        )
    return texts, np.asarray(targets, dtype=np.int64)


class TweetStream:
    """An endless, seeded source of labelled tweets.

    A live stream of tweets never ends and never repeats. This simulates one
    from a finite pool: each sample draws a class at random, then glues
    together ``texts_per_sample`` random texts of that class, so that samples
    are new combinations rather than repeats of the pool.

    Parameters
    ----------
    texts : sequence of str
        The pool of texts.
    targets : array-like of shape (len(texts),)
        Their labels; at least two classes, each with at least one text.
    batch_size : int, default=100
        Size of the batches :meth:`next_batch` and iteration return.
    texts_per_sample : int, default=2
        How many texts of the pool make one sample.
    random_state : int, default=0
        Seed: two streams with the same pool and seed give the same batches.

    Attributes
    ----------
    classes_ : ndarray
        The distinct labels, sorted: pass them to ``partial_fit``.
    n_samples_seen_ : int
        Samples handed out so far.

    Examples
    --------
    >>> stream = TweetStream(["good day", "great fun", "bad day"], [1, 1, -1])
    >>> texts, targets = stream.next_batch(4)
    >>> len(texts), sorted(set(targets.tolist()) - {-1, 1})
    (4, [])
    >>> stream.classes_.tolist(), stream.n_samples_seen_
    ([-1, 1], 4)
    """

    def __init__(self, texts, targets, *, batch_size=100, texts_per_sample=2, random_state=0):
        if isinstance(texts, str) or not hasattr(texts, "__len__"):
            raise TypeError(
                f"texts must be a sequence of str, but got {_short_repr(texts)} (of type "
                f"{type(texts).__name__}); a single text needs to be wrapped in a list."
            )
        targets = np.asarray(targets)
        if targets.ndim != 1 or len(targets) != len(texts):
            raise ValueError(
                f"targets must hold one label per text: got {len(texts)} texts and targets "
                f"of shape {targets.shape}."
            )
        self.classes_ = np.unique(targets)
        if len(self.classes_) < 2:
            raise ValueError(
                f"targets must hold at least 2 classes to learn from, but got "
                f"{self.classes_.tolist()}."
            )
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.texts_per_sample = check_int(texts_per_sample, "texts_per_sample", minimum=1)
        self.random_state = check_int(random_state, "random_state", minimum=0)
        texts = np.asarray(texts, dtype=object)
        self._pools = [texts[targets == label] for label in self.classes_]
        self._rng = np.random.default_rng(random_state)
        self.n_samples_seen_ = 0

    def next_batch(self, size=None):
        """The next ``size`` samples of the stream.

        Parameters
        ----------
        size : int, optional
            Number of samples. Default: ``batch_size``.

        Returns
        -------
        texts : list of str
        targets : ndarray of shape (size,)
        """
        size = self.batch_size if size is None else check_int(size, "size", minimum=1)
        classes = self._rng.integers(0, len(self.classes_), size=size)
        texts = []
        for k in classes.tolist():
            pool = self._pools[k]
            picks = self._rng.integers(0, len(pool), size=self.texts_per_sample)
            texts.append(" ".join(pool[picks].tolist()))
        self.n_samples_seen_ += size
        return texts, self.classes_[classes]

    def __iter__(self):
        return self

    def __next__(self):
        return self.next_batch()

    def __repr__(self):
        n_texts = sum(len(pool) for pool in self._pools)
        return (
            f"TweetStream({n_texts} texts, classes={self.classes_.tolist()}, "
            f"batch_size={self.batch_size}, random_state={self.random_state!r})"
        )


#: The course's HashingVectorizer settings.
HASHING_DEFAULTS = {
    # 262,144 columns: few collisions for tweets' vocabulary, and a linear
    # model's coef_ of 2 MiB, cheap to send between engines.
    "n_features": 2**18,
    # Word pairs catch negations: "not happy" is not "happy".
    "ngram_range": (1, 2),
    # Non-negative counts, l2-normalised: the same features as
    # TfidfVectorizer(use_idf=False), up to collisions.
    "alternate_sign": False,
    "norm": "l2",
}


def make_hashing_vectorizer(**overrides):
    """The course's :class:`~sklearn.feature_extraction.text.HashingVectorizer`.

    A hashing vectorizer is stateless: it maps a word to a column by hashing
    it, with no vocabulary to learn. It needs no ``fit``, takes the same
    memory for any amount of text, and two copies of it (on two engines, or
    for two batches of a stream) give the same columns.

    Parameters
    ----------
    **overrides
        Parameters of ``HashingVectorizer`` that replace the course's
        defaults: ``n_features=2**18``, ``ngram_range=(1, 2)``,
        ``alternate_sign=False``, ``norm="l2"``.

    Returns
    -------
    sklearn.feature_extraction.text.HashingVectorizer

    Raises
    ------
    TypeError
        If an override is not a parameter of ``HashingVectorizer``.
    sklearn.utils._param_validation.InvalidParameterError
        (a ``ValueError``) if an override has an invalid value.

    Examples
    --------
    >>> vectorizer = make_hashing_vectorizer(n_features=2**10)
    >>> X = vectorizer.transform(["not happy today", "so happy"])
    >>> X.shape
    (2, 1024)
    """
    from sklearn.feature_extraction.text import HashingVectorizer

    params = {**HASHING_DEFAULTS, **overrides}
    valid = HashingVectorizer().get_params()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise TypeError(
            f"{unknown} are not parameters of HashingVectorizer; valid ones are {sorted(valid)}."
        )
    # fit() of a HashingVectorizer learns nothing; it validates the parameters.
    return HashingVectorizer(**params).fit([])


def train_online(
    stream, classifier, vectorizer, X_val, y_val, n_batches, eval_every, progress_bar=True
):
    """Train a classifier out of core on a stream, scoring it as it learns.

    Each step takes a batch from the stream, vectorizes it and calls
    ``classifier.partial_fit``: only one batch is in memory at a time. Every
    ``eval_every`` batches, and after the last one, the classifier is scored
    on the validation set.

    Parameters
    ----------
    stream : TweetStream
        Or any object with ``next_batch()`` returning ``(texts, targets)``
        and a ``classes_`` attribute.
    classifier : estimator with ``partial_fit``
        Trained in place, e.g. ``SGDClassifier()``, ``Perceptron()``, or
        the passive-aggressive algorithm ``SGDClassifier(loss="hinge",
        penalty=None, learning_rate="pa1", eta0=1.0)``.
    vectorizer : transformer
        A stateless one, e.g. :func:`make_hashing_vectorizer`.
    X_val : list of str or sparse matrix
        Validation texts (vectorized once, here) or their features.
    y_val : array-like of shape (n_val,)
        Validation labels.
    n_batches : int
        Number of batches to train on.
    eval_every : int
        Score the classifier every ``eval_every`` batches.
    progress_bar : bool, default=True
        Show a tqdm progress bar.

    Returns
    -------
    history : list of (int, float)
        ``(samples seen, validation accuracy)`` after each evaluation.

    Examples
    --------
    >>> from sklearn.linear_model import SGDClassifier
    >>> stream = TweetStream(["good day", "great fun", "bad day", "sad news"], [1, 1, -1, -1])
    >>> history = train_online(
    ...     stream, SGDClassifier(random_state=0), make_hashing_vectorizer(),
    ...     ["good fun", "sad day"], [1, -1], n_batches=4, eval_every=2, progress_bar=False)
    >>> [n for n, score in history]
    [200, 400]
    """
    if not callable(getattr(stream, "next_batch", None)) or not hasattr(stream, "classes_"):
        raise TypeError(
            f"stream must have next_batch() and classes_, like a TweetStream, but got "
            f"{_short_repr(stream)} (of type {type(stream).__name__})."
        )
    if not callable(getattr(classifier, "partial_fit", None)):
        raise TypeError(
            f"classifier {classifier!r} has no partial_fit method: it cannot learn out of "
            "core. Use e.g. SGDClassifier or Perceptron."
        )
    if not callable(getattr(vectorizer, "transform", None)):
        raise TypeError(f"vectorizer {vectorizer!r} has no transform method.")
    n_batches = check_int(n_batches, "n_batches", minimum=1)
    eval_every = check_int(eval_every, "eval_every", minimum=1)
    if not (sp.issparse(X_val) or isinstance(X_val, np.ndarray) and X_val.dtype != object):
        if isinstance(X_val, str):
            raise TypeError(
                f"X_val must be a list of texts, but got a single str, {_short_repr(X_val)}; "
                f"wrap it in a list."
            )
        X_val = vectorizer.transform(X_val)
    y_val = np.asarray(y_val)
    if X_val.shape[0] != len(y_val):
        raise ValueError(
            f"X_val and y_val must have as many samples: got {X_val.shape[0]} and {len(y_val)}."
        )

    batches = range(1, n_batches + 1)
    if progress_bar:
        from tqdm.auto import tqdm

        batches = tqdm(batches, desc="batches", file=sys.stderr)
    history = []
    n_seen = 0
    for i in batches:
        texts, targets = stream.next_batch()
        n_seen += len(texts)
        classifier.partial_fit(vectorizer.transform(texts), targets, classes=stream.classes_)
        if i % eval_every == 0 or i == n_batches:
            score = float(classifier.score(X_val, y_val))
            history.append((n_seen, score))
            if progress_bar:
                batches.set_postfix(accuracy=f"{score:.3f}")
    return history


def plot_learning_curve(history, ax=None, *, chance=0.5):
    """Plot validation accuracy against the number of samples seen.

    Parameters
    ----------
    history : list of (int, float)
        As returned by :func:`train_online`.
    ax : matplotlib.axes.Axes, optional
        Where to draw. Default: a new figure.
    chance : float or None, default=0.5
        Draw the accuracy of guessing as a dashed line; None draws none.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> ax = plot_learning_curve([(100, 0.6), (200, 0.7), (300, 0.74)])
    >>> ax.get_xlabel()
    'samples seen'
    """
    history = list(history)
    if not history or any(len(point) != 2 for point in history):
        raise ValueError(
            "history must be a non-empty list of (samples seen, score) pairs, as "
            f"train_online returns, but got {history!r}."
        )
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 3.5))
    n_seen, scores = zip(*history, strict=True)
    ax.plot(n_seen, scores, marker="o", markersize=3, label="validation accuracy")
    if chance is not None:
        ax.axhline(chance, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xlabel("samples seen")
    ax.set_ylabel("accuracy")
    ax.set_ylim(min(0.4, min(scores) - 0.05), 1.0)
    ax.legend(loc="lower right")
    return ax


def _check_csv_path(csv_path):
    return check_file(
        csv_path,
        "csv_path",
        hint=" course_lib.datasets.fetch_sentiment140() downloads the real tweets; "
        "course_lib.datasets.make_tweet_corpus(n_samples) writes look-alikes offline.",
    )


#: Rows read from the start of a file to tell whether it is a tweets CSV.
_SNIFF_ROWS = 50


def _is_tweet_row(row):
    return len(row) == _N_FIELDS and row[0] in _VALID_POLARITIES


def _check_tweets_start(path, given):
    """ValueError naming the file when none of its first rows is a tweet (an empty file passes)."""
    with open(path, "rb") as file:
        start = file.read(64 * 1024)
    if not start:
        return
    lines = start.decode(ENCODING).splitlines(keepends=True)[:_SNIFF_ROWS]
    rows = 0
    for line in lines:
        try:
            row = next(csv.reader([line]), [])
        except csv.Error:
            row = []
        if _is_tweet_row(row):
            return
        rows += 1
    kind = "a binary file" if b"\0" in start[:4096] else "not a tweets CSV"
    raise ValueError(
        f"csv_path == {str(given)!r} is {kind}: none of its first {rows} row(s) has the "
        f"{_N_FIELDS} fields of Sentiment140 with a polarity of 0, 2 or 4 (it starts with "
        f"{start[:40]!r}). Give the CSV of fetch_sentiment140() or make_tweet_corpus()."
    )


def _short_repr(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
