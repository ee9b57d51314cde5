"""course_lib.text: reading partitions, the tweet stream, online learning."""

import pickle
import re
import warnings

import matplotlib
import numpy as np
import pytest
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from sklearn.linear_model import Perceptron, SGDClassifier
from sklearn.model_selection import train_test_split

from course_lib.datasets import make_tweet_corpus
from course_lib.text import (
    MalformedRowsWarning,
    TweetStream,
    make_hashing_vectorizer,
    plot_learning_curve,
    read_tweets,
    train_online,
)

matplotlib.use("Agg")


def _row(polarity, text, *, tweet_id=1):
    return f'"{polarity}","{tweet_id}","Mon Apr 06 22:19:45 PDT 2009","NO_QUERY","u","{text}"\n'


@pytest.fixture
def numbered_csv(tmp_path):
    """60 rows, each text unique and naming its row: negative, neutral, positive."""
    polarities = ["0"] * 25 + ["2"] * 10 + ["4"] * 25
    lines = [_row(p, f"row {i}", tweet_id=i) for i, p in enumerate(polarities)]
    path = tmp_path / "numbered.csv"
    path.write_text("".join(lines), encoding="latin-1")
    return path, polarities


def _row_numbers(texts):
    return [int(text.split()[1]) for text in texts]


@pytest.mark.parametrize("n_partitions", [1, 2, 3, 7])
def test_partitions_cover_every_row_exactly_once(numbered_csv, n_partitions):
    path, polarities = numbered_csv
    seen = []
    for k in range(n_partitions):
        texts, targets = read_tweets(path, n_partitions=n_partitions, partition_id=k)
        rows = _row_numbers(texts)
        # Partition k is the rows whose index modulo n_partitions is k.
        assert all(i % n_partitions == k for i in rows)
        assert targets.tolist() == [-1 if polarities[i] == "0" else 1 for i in rows]
        seen.extend(rows)
    strong = [i for i, p in enumerate(polarities) if p != "2"]
    assert sorted(seen) == strong  # every strong row, none twice


def test_max_count_balances_the_classes(tmp_path):
    # The corpus is sorted by polarity: the first rows are all negative.
    path = make_tweet_corpus(2000, path=tmp_path / "tweets.csv")
    for max_count in (100, 101, 2):
        texts, targets = read_tweets(path, max_count=max_count)
        assert len(texts) == len(targets) == max_count
        assert (targets == -1).sum() == max_count // 2
        assert (targets == 1).sum() == max_count - max_count // 2
    texts, targets = read_tweets(path, max_count=200, n_partitions=3, partition_id=2)
    assert (targets == -1).sum() == (targets == 1).sum() == 100


def test_max_count_larger_than_the_file_reads_everything(numbered_csv):
    path, _ = numbered_csv
    texts, targets = read_tweets(path, max_count=10_000)
    assert len(texts) == 50 and targets.dtype == np.int64


def test_malformed_rows_are_skipped_and_counted(tmp_path):
    lines = [
        _row("0", "fine negative"),
        '"0","2","too few fields"\n',  # malformed: 3 fields
        _row("4", "fine positive"),
        _row("x", "unknown polarity"),  # malformed: polarity
        "\0 a NUL byte, one field\n",  # malformed: 1 field
        _row("0", "x" * 200_000),  # malformed: csv.Error, field over the parser's limit
        _row("2", "neutral, skipped but not malformed"),
        _row("4", "another positive"),
    ]
    path = tmp_path / "broken.csv"
    path.write_text("".join(lines), encoding="latin-1")
    with pytest.warns(MalformedRowsWarning, match="Skipped 4 malformed") as record:
        texts, targets = read_tweets(path)
    assert record[0].message.n_rows == 4
    assert pickle.loads(pickle.dumps(record[0].message)).n_rows == 4  # engines pickle it
    assert texts == ["fine negative", "fine positive", "another positive"]
    assert targets.tolist() == [-1, 1, 1]
    # Each partition counts its own malformed rows; together, all of them.
    counted = 0
    for k in range(2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            read_tweets(path, n_partitions=2, partition_id=k)
        counted += sum(w.message.n_rows for w in caught if w.category is MalformedRowsWarning)
    assert counted == 4


def test_a_clean_file_gives_no_warning(numbered_csv):
    path, _ = numbered_csv
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_tweets(path)


def test_reads_latin1(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(
        _row("4", "caf\xe9 cr\xe8me").encode("latin-1") + b'"0","1","d","q","u","\xff"\n'
    )
    texts, targets = read_tweets(path)
    assert texts == ["café crème", "ÿ"]
    assert targets.tolist() == [1, -1]


@pytest.mark.parametrize(
    "content, kind",
    [
        (bytes(range(256)) * 64, "a binary file"),
        (b"name,age,city\nada,36,london\n", "not a tweets CSV"),
    ],
)
def test_a_file_that_is_no_tweets_csv_is_refused_naming_it(tmp_path, content, kind):
    path = tmp_path / "data.bin"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=re.escape(f"{str(path)!r} is {kind}")):
        read_tweets(path)
    assert path.read_bytes() == content


def test_an_empty_file_has_no_tweets(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    texts, targets = read_tweets(path)
    assert texts == [] and targets.shape == (0,)


def test_missing_file_gives_a_clear_error(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(FileNotFoundError, match="nope.csv.*make_tweet_corpus"):
        read_tweets(missing)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_partitions": 0}, ValueError, "n_partitions == 0"),
        ({"n_partitions": 2, "partition_id": 2}, ValueError, "partition_id == 2"),
        ({"partition_id": -1}, ValueError, "partition_id == -1"),
        ({"max_count": 0}, ValueError, "max_count == 0"),
        ({"max_count": 1.5}, TypeError, "1.5"),
        ({"n_partitions": "2"}, TypeError, "'2'"),
    ],
)
def test_read_tweets_validates_arguments(numbered_csv, kwargs, error, match):
    path, _ = numbered_csv
    with pytest.raises(error, match=match):
        read_tweets(path, **kwargs)


def test_read_tweets_rejects_a_non_path():
    with pytest.raises(TypeError, match="42"):
        read_tweets(42)


# ---------------------------------------------------------------------------
# TweetStream
# ---------------------------------------------------------------------------

POOL_TEXTS = [f"pos{i}" for i in range(20)] + [f"neg{i}" for i in range(20)]
POOL_TARGETS = [1] * 20 + [-1] * 20


def _batches(stream, n):
    return [stream.next_batch() for _ in range(n)]


def test_stream_is_reproducible_for_a_seed():
    a = _batches(TweetStream(POOL_TEXTS, POOL_TARGETS, random_state=7), 5)
    b = _batches(TweetStream(POOL_TEXTS, POOL_TARGETS, random_state=7), 5)
    c = _batches(TweetStream(POOL_TEXTS, POOL_TARGETS, random_state=8), 5)
    for (ta, ya), (tb, yb) in zip(a, b, strict=True):
        assert ta == tb and ya.tolist() == yb.tolist()
    assert [t for t, _ in a] != [t for t, _ in c]


def test_stream_samples_combine_texts_of_their_class():
    stream = TweetStream(POOL_TEXTS, POOL_TARGETS, batch_size=50, texts_per_sample=3)
    texts, targets = next(stream)
    assert len(texts) == 50 and stream.n_samples_seen_ == 50
    for text, target in zip(texts, targets.tolist(), strict=True):
        parts = text.split()
        assert len(parts) == 3
        assert all(p.startswith("pos" if target == 1 else "neg") for p in parts)
    # Both classes come up, about evenly, and the stream does not repeat itself.
    texts, targets = stream.next_batch(2000)
    assert 0.4 < (targets == 1).mean() < 0.6
    assert len(set(texts)) > 1000
    assert stream.n_samples_seen_ == 2050


@pytest.mark.parametrize(
    ("texts", "targets", "error", "match"),
    [
        (["a", "b"], [1, 1], ValueError, "at least 2 classes"),
        (["a", "b"], [1, -1, 1], ValueError, "one label per text"),
        ("ab", [1, -1], TypeError, "wrapped in a list"),
    ],
)
def test_stream_validates_its_pool(texts, targets, error, match):
    with pytest.raises(error, match=match):
        TweetStream(texts, targets)


def test_stream_validates_sizes():
    with pytest.raises(ValueError, match="batch_size == 0"):
        TweetStream(POOL_TEXTS, POOL_TARGETS, batch_size=0)
    with pytest.raises(ValueError, match="size == -3"):
        TweetStream(POOL_TEXTS, POOL_TARGETS).next_batch(-3)


# ---------------------------------------------------------------------------
# The hashing vectorizer and online training
# ---------------------------------------------------------------------------


def test_hashing_vectorizer_defaults_and_overrides():
    vectorizer = make_hashing_vectorizer()
    assert isinstance(vectorizer, HashingVectorizer)
    assert vectorizer.n_features == 2**18 and vectorizer.ngram_range == (1, 2)
    assert make_hashing_vectorizer(n_features=2**12).n_features == 2**12
    # Stateless: two copies give the same columns, with no fit.
    docs = ["not happy at all", "so happy today"]
    X1 = vectorizer.transform(docs)
    X2 = make_hashing_vectorizer().transform(docs)
    assert (X1 != X2).nnz == 0
    # Same features as a vocabulary-based TF vectorizer, up to collisions.
    tf = TfidfVectorizer(use_idf=False, ngram_range=(1, 2)).fit_transform(docs)
    assert np.allclose(np.sort(X1.data), np.sort(tf.data))


def test_hashing_vectorizer_rejects_bad_overrides():
    with pytest.raises(TypeError, match="n_feature"):
        make_hashing_vectorizer(n_feature=10)
    with pytest.raises(ValueError, match="n_features"):
        make_hashing_vectorizer(n_features=-1)


@pytest.fixture(scope="module")
def tweets(tmp_path_factory):
    path = make_tweet_corpus(20_000, path=tmp_path_factory.mktemp("corpus") / "tweets.csv")
    texts, targets = read_tweets(path)
    return train_test_split(texts, targets, test_size=5000, random_state=0)


def test_online_training_rises_well_above_chance(tweets):
    texts_train, texts_val, y_train, y_val = tweets
    stream = TweetStream(texts_train, y_train, batch_size=100, random_state=0)
    classifier = SGDClassifier(
        loss="hinge", penalty=None, learning_rate="pa1", eta0=1.0, random_state=0
    )
    history = train_online(
        stream,
        classifier,
        make_hashing_vectorizer(),
        texts_val,
        y_val,
        n_batches=60,
        eval_every=10,
        progress_bar=False,
    )
    seen = [n for n, _ in history]
    scores = [s for _, s in history]
    assert seen == [1000, 2000, 3000, 4000, 5000, 6000]
    assert scores[-1] >= 0.70  # chance is 0.5
    assert np.mean(scores[-3:]) > scores[0] - 0.02
    assert hasattr(classifier, "coef_")  # trained in place
    # The progress bar does not change the result; features can be given.
    again = train_online(
        TweetStream(texts_train, y_train, batch_size=100, random_state=0),
        SGDClassifier(loss="hinge", penalty=None, learning_rate="pa1", eta0=1.0, random_state=0),
        make_hashing_vectorizer(),
        make_hashing_vectorizer().transform(texts_val),
        y_val,
        n_batches=20,
        eval_every=10,
        progress_bar=True,
    )
    assert again == history[:2]


def test_train_online_validates_arguments(tweets):
    texts_train, texts_val, y_train, y_val = tweets
    stream = TweetStream(texts_train[:100], y_train[:100])
    vectorizer = make_hashing_vectorizer()
    common = {"n_batches": 1, "eval_every": 1, "progress_bar": False}
    from sklearn.svm import LinearSVC

    with pytest.raises(TypeError, match="partial_fit"):
        train_online(stream, LinearSVC(), vectorizer, texts_val, y_val, **common)
    with pytest.raises(TypeError, match="next_batch"):
        train_online(texts_train, Perceptron(), vectorizer, texts_val, y_val, **common)
    with pytest.raises(ValueError, match="as many samples"):
        train_online(stream, Perceptron(), vectorizer, texts_val, y_val[:-1], **common)
    with pytest.raises(ValueError, match="eval_every == 0"):
        train_online(stream, Perceptron(), vectorizer, texts_val, y_val, 1, 0, False)


def test_plot_learning_curve_draws_the_history():
    history = [(100, 0.61), (200, 0.7), (300, 0.74)]
    ax = plot_learning_curve(history)
    line = ax.get_lines()[0]
    assert line.get_xdata().tolist() == [100, 200, 300]
    assert line.get_ydata().tolist() == [0.61, 0.7, 0.74]
    with pytest.raises(ValueError, match="non-empty"):
        plot_learning_curve([])
    import matplotlib.pyplot as plt

    plt.close("all")
