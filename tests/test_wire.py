"""course_lib._wire: what crosses is data, rebuilt without running the sender's code."""

import collections
import datetime
import decimal
import fractions
import json

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import make_pipeline

from course_lib import _wire

ROUND_TRIPS = [
    0,
    -(2**70),
    2.5,
    "text",
    None,
    True,
    ...,
    (1, "a"),
    {1, 2},
    frozenset({3}),
    {"k": [1, (2, 3)], 4: None},
    [[], {}],
    datetime.datetime(2026, 12, 3, 18, 54, 1, 5),
    datetime.date(2026, 12, 3),
    datetime.timedelta(days=1, seconds=2, microseconds=3),
    fractions.Fraction(3, 4),
    decimal.Decimal("2.50"),
    float,
    np.float32,
    np.dtype("int16"),
]


@pytest.mark.parametrize("value", ROUND_TRIPS, ids=repr)
def test_plain_values_cross_unchanged(value):
    back = _wire.decode(_wire.encode(value))
    assert back == value and type(back) is type(value)


def test_special_floats_cross():
    back = _wire.decode(_wire.encode([float("nan"), float("inf"), -float("inf")]))
    assert np.isnan(back[0]) and back[1:] == [float("inf"), -float("inf")]


@pytest.mark.parametrize(
    "value, plain",
    [
        (collections.Counter("aab"), {"a": 2, "b": 1}),
        (collections.namedtuple("Pair", "a b")(1, 2), (1, 2)),
        (range(3), [0, 1, 2]),
        (collections.OrderedDict(a=1), {"a": 1}),
    ],
    ids=["Counter", "namedtuple", "range", "OrderedDict"],
)
def test_subclasses_cross_as_the_plain_type(value, plain):
    back = _wire.decode(_wire.encode(value))
    assert back == plain and type(back) is type(plain)


def test_number_subclass_loses_its_methods():
    class Agreeable(float):
        def __eq__(self, other):
            return True

        __hash__ = float.__hash__

        def __sub__(self, other):
            return 0.0

    back = _wire.decode(_wire.encode(Agreeable(3.0)))
    assert type(back) is float and back != 4.0 and back - 4.0 == -1.0


def test_numpy_values_keep_dtype_and_shape():
    array = np.arange(12, dtype=np.int32).reshape(3, 4)
    back = _wire.decode(_wire.encode({"a": array, "s": np.float32(2.5)}))
    assert back["a"].dtype == np.int32 and back["a"].shape == (3, 4)
    np.testing.assert_array_equal(back["a"], array)
    assert type(back["s"]) is np.float32 and back["s"] == 2.5


@pytest.mark.parametrize("kind", ["csr_matrix", "csc_array", "coo_matrix", "lil_matrix"])
def test_sparse_matrices_cross(kind):
    dense = np.array([[0, 1.5, 0], [2, 0, 0]])
    value = getattr(sp, kind)(dense)
    back = _wire.decode(_wire.encode(value))
    assert sp.issparse(back)
    np.testing.assert_array_equal(back.toarray(), dense)


def test_estimators_are_rebuilt_from_their_parameters_and_fitted_arrays():
    rng = np.random.default_rng(0)
    X = rng.random((30, 3))
    y = (X[:, 0] > 0.5).astype(int)
    model = SGDClassifier(alpha=0.01, random_state=0).fit(X, y)
    back = _wire.decode(_wire.encode(model))
    assert type(back) is SGDClassifier and back.alpha == 0.01
    np.testing.assert_array_equal(back.coef_, model.coef_)
    np.testing.assert_array_equal(back.predict(X), model.predict(X))
    texts, labels = ["good day", "bad day", "good", "bad"], [1, 0, 1, 0]
    pipeline = make_pipeline(HashingVectorizer(n_features=32), SGDClassifier(random_state=0))
    pipeline.fit(texts, labels)
    rebuilt = _wire.decode(_wire.encode(pipeline))
    np.testing.assert_array_equal(rebuilt.predict(texts), pipeline.predict(texts))


def test_an_estimator_class_of_the_senders_is_not_data():
    class Lenient(SGDClassifier):
        def score(self, X, y):
            return 1.0

    with pytest.raises(_wire.NotData, match="Lenient"):
        _wire.encode(Lenient())


@pytest.mark.parametrize(
    "value, named",
    [
        (lambda x: x, "function"),
        ((i for i in range(3)), "generator"),
        (object(), "builtins.object"),
        (np.array([object()]), "dtype object"),
    ],
    ids=["function", "generator", "object", "object-array"],
)
def test_what_is_not_data_is_refused_naming_its_type(value, named):
    with pytest.raises(_wire.NotData, match=named):
        _wire.encode(value)


def test_a_cycle_is_refused_not_followed():
    loop = []
    loop.append(loop)
    with pytest.raises(_wire.NotData, match="nested deeper"):
        _wire.encode(loop)


def test_decoding_refuses_deep_nesting_before_parsing():
    with pytest.raises(_wire.DataError, match="nested deeper"):
        _wire.decode("[" * 200_000 + "]" * 200_000)


def test_decoding_refuses_text_that_is_too_long(monkeypatch):
    monkeypatch.setattr(_wire, "MAX_BYTES", 100)
    with pytest.raises(_wire.DataError, match="characters long"):
        _wire.decode(json.dumps("x" * 200))


def test_decoding_refuses_too_many_items(monkeypatch):
    monkeypatch.setattr(_wire, "MAX_ITEMS", 1000)
    with pytest.raises(_wire.DataError, match="more than 1000 items"):
        _wire.decode(_wire.encode(np.zeros(5000)))


@pytest.mark.parametrize(
    "text, words",
    [
        ('{"a": 1}', "no encoder made"),
        ('{"$": "pickle", "v": "gASV"}', "unknown kind"),
        ('{"$": "estimator", "cls": "os:system", "params": [], "fitted": []}', "not a scikit"),
        ('{"$": "ndarray", "npy": "not base64!"}', "malformed"),
        ("not json", "not valid data text"),
        (b"bytes", "expected the text"),
    ],
)
def test_decoding_refuses_what_no_encoder_made(text, words):
    with pytest.raises(_wire.DataError, match=words):
        _wire.decode(text)


def test_a_pickled_array_is_refused():
    import base64
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.array([object()]), allow_pickle=True)
    node = {"$": "ndarray", "npy": base64.b64encode(buffer.getvalue()).decode()}
    with pytest.raises(_wire.DataError, match="malformed"):
        _wire.decode(json.dumps(node))
