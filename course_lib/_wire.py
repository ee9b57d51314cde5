"""Values as data only: what may cross from a student's kernel to a checker.

:func:`encode` turns a value into JSON text made of data alone; :func:`decode`
turns such text back into a value, running no code of the sender's: no
pickle, no import of the sender's classes, no call of its methods. What
crosses:

* ``None``, ``bool``, ``int``, ``float`` (``nan`` and infinities too), ``str``,
  ``fractions.Fraction``, ``decimal.Decimal``,
  ``...`` (an unanswered quiz or exercise);
* ``list``, ``tuple``, ``set``, ``frozenset``, ``dict`` (any keys that cross),
  ``range`` (as a list); subclasses of these (a namedtuple, a ``Counter``, a
  ``numpy.float64``) cross as the plain type;
* NumPy arrays and scalars, through ``numpy.save``/``numpy.load`` with
  ``allow_pickle=False`` (no ``object`` arrays);
* SciPy sparse matrices and arrays in CSR, CSC and COO form (their arrays);
* the types ``bool``, ``int``, ``float``, ``complex``, ``str``, NumPy's scalar types
  and dtypes (an estimator's ``dtype`` parameter);
* ``datetime.datetime``, ``datetime.date``, ``datetime.timedelta`` (task
  metadata is full of them);
* scikit-learn estimators: a class of ``sklearn`` itself, named by its path
  and rebuilt by the receiver from its own ``sklearn``, with the parameters
  and the fitted attributes (``coef_``, ``classes_``, ...) as data.

Anything else raises :class:`NotData` naming its type. :func:`decode` checks
the size of the text, the depth of the nesting and the number of items before
it builds anything (:class:`DataError`), so a reply built to exhaust the
receiver's memory or recursion fails, named.

Examples
--------
>>> import numpy as np
>>> decode(encode({"scores": np.array([0.5, 0.75]), "best": (3, "rbf")}))
{'scores': array([0.5 , 0.75]), 'best': (3, 'rbf')}
>>> decode(encode(...)) is ...
True
>>> encode(lambda x: x)  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
course_lib._wire.NotData: an object of type builtins.function is not data: ...
"""

from __future__ import annotations

import base64
import datetime
import decimal
import fractions
import importlib
import io
import json
import math

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_ITEMS", "DataError", "NotData", "decode", "encode"]

#: The longest text :func:`decode` accepts, in characters.
MAX_BYTES = 64 * 2**20
#: The deepest nesting of containers that crosses.
MAX_DEPTH = 64
#: The most containers and items, in all, in one value.
MAX_ITEMS = 2_000_000

_TAG = "$"
#: Types that cross by name (an estimator's ``dtype=float`` parameter).
_PLAIN_TYPES = {kind.__name__: kind for kind in (bool, int, float, complex, str)}
_SPARSE_FORMATS = ("csr", "csc", "coo")


class NotData(TypeError):
    """A value that cannot cross as data (its type is named)."""


class DataError(ValueError):
    """Text that is not a value :func:`encode` could have made, or is too big."""


def type_name(value):
    """``module.qualname`` of the type of ``value``."""
    kind = type(value)
    return f"{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', kind.__name__)}"


def _not_data(value, why=""):
    return NotData(
        f"an object of type {type_name(value)} is not data{why}: what crosses is numbers, "
        "strings, lists, tuples, sets, dicts, NumPy arrays, sparse matrices, dates and "
        "scikit-learn estimators"
    )


# -- encoding: in the sender's process ----------------------------------------


def encode(value, *, extra=None):
    """The JSON text of ``value``, made of data only.

    Parameters
    ----------
    value : object
        What to send.
    extra : callable, optional
        ``extra(value)`` returns a tagged node (a dict) for values the caller
        knows how to name (references in a request), or None.

    Raises
    ------
    NotData
        For a value (or a part of it) that is not data, or nested deeper
        than :data:`MAX_DEPTH`.
    """
    return json.dumps(_encode(value, 0, extra), allow_nan=False, separators=(",", ":"))


def _node(kind, **fields):
    return {_TAG: kind, **fields}


def _encode(value, depth, extra):
    if depth > MAX_DEPTH:
        raise NotData(f"the value is nested deeper than {MAX_DEPTH} levels (a cycle?)")
    if extra is not None:
        node = extra(value)
        if node is not None:
            return node
    if value is None or type(value) in (bool, str):
        return value
    if type(value) is int:
        return value if abs(value) < 2**53 else _node("int", v=str(value))
    if type(value) is float:
        return value if math.isfinite(value) else _node("float", v=repr(value))
    if value is Ellipsis:
        return _node("...")
    if isinstance(value, type) and _PLAIN_TYPES.get(value.__name__) is value:
        return _node("type", v=value.__name__)
    numpy = _module("numpy")
    if numpy is not None and isinstance(value, numpy.ndarray | numpy.generic):
        return _encode_numpy(value, numpy)
    if numpy is not None and isinstance(value, numpy.dtype):
        return _node("dtype", v=_npy(numpy.zeros(0, dtype=value), numpy))
    if numpy is not None and isinstance(value, type) and issubclass(value, numpy.generic):
        return _node("nptype", v=_npy(numpy.zeros(0, dtype=value), numpy))
    sparse = _module("scipy.sparse")
    if sparse is not None and sparse.issparse(value):
        return _encode_sparse(value, sparse, depth, extra)
    # Subclasses of the plain types cross as the plain type (bool is an int).
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return _encode(int.__int__(value), depth, extra)
    if isinstance(value, float):
        return _encode(float.__float__(value), depth, extra)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, list | range):
        return [_encode(item, depth + 1, extra) for item in list(value)]
    if isinstance(value, tuple):
        return _node("tuple", v=[_encode(item, depth + 1, extra) for item in tuple(value)])
    if isinstance(value, set | frozenset):
        kind = "frozenset" if isinstance(value, frozenset) else "set"
        return _node(kind, v=[_encode(item, depth + 1, extra) for item in list(value)])
    if isinstance(value, dict):
        items = [
            [_encode(k, depth + 1, extra), _encode(v, depth + 1, extra)]
            for k, v in dict.items(value)
        ]
        return _node("dict", v=items)
    if isinstance(value, fractions.Fraction):
        return _node("fraction", v=[str(value.numerator), str(value.denominator)])
    if isinstance(value, decimal.Decimal):
        return _node("decimal", v=str(decimal.Decimal.__str__(value)))
    if isinstance(value, datetime.datetime):
        return _node("datetime", v=value.isoformat())
    if isinstance(value, datetime.date):
        return _node("date", v=value.isoformat())
    if isinstance(value, datetime.timedelta):
        return _node("timedelta", v=[value.days, value.seconds, value.microseconds])
    base = _module("sklearn.base")
    if base is not None and isinstance(value, base.BaseEstimator):
        return _encode_estimator(value, depth, extra)
    raise _not_data(value)


def _module(name):
    """An already imported module, or None: encoding never imports anything."""
    import sys

    return sys.modules.get(name)


def _npy(array, numpy):
    buffer = io.BytesIO()
    try:
        numpy.save(buffer, numpy.asarray(array), allow_pickle=False)
    except ValueError as error:
        raise _not_data(array, f" (a NumPy array of dtype {array.dtype})") from error
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _encode_numpy(value, numpy):
    if isinstance(value, numpy.generic):
        return _node("npscalar", npy=_npy(numpy.asarray(value), numpy))
    return _node("ndarray", npy=_npy(value, numpy))


def _encode_sparse(value, sparse, depth, extra):
    numpy = _module("numpy")
    fmt = value.format
    if fmt not in _SPARSE_FORMATS:
        value, fmt = value.tocsr(), "csr"
    if fmt == "coo":
        arrays = {"data": value.data, "row": value.row, "col": value.col}
    else:
        arrays = {"data": value.data, "indices": value.indices, "indptr": value.indptr}
    return _node(
        "sparse",
        format=fmt,
        array=not isinstance(value, sparse.spmatrix),
        shape=[int(n) for n in value.shape],
        arrays={name: _npy(array, numpy) for name, array in arrays.items()},
    )


def _estimator_path(value):
    kind = type(value)
    module = getattr(kind, "__module__", "")
    if module.split(".")[0] != "sklearn":
        raise _not_data(value, " (only scikit-learn's own estimator classes cross)")
    return f"{module}:{kind.__qualname__}"


def _fitted_attributes(value):
    return {
        name: item
        for name, item in vars(value).items()
        if name.endswith("_") and not name.startswith("_")
    }


def _encode_estimator(value, depth, extra):
    path = _estimator_path(value)
    params = value.get_params(deep=False)
    return _node(
        "estimator",
        cls=path,
        params=_encode(params, depth + 1, extra),
        fitted=_encode(_fitted_attributes(value), depth + 1, extra),
    )


# -- decoding: in the receiver's process --------------------------------------


def decode(text, *, extra=None):
    """The value that :func:`encode` made ``text`` from, built from data alone.

    Parameters
    ----------
    text : str
        What :func:`encode` returned.
    extra : callable, optional
        ``extra(node)`` turns tagged nodes the caller knows (references in a
        request) into values; it is given every tagged node first and
        returns ``NotImplemented`` for the others.

    Raises
    ------
    DataError
        For text longer than :data:`MAX_BYTES`, nested deeper than
        :data:`MAX_DEPTH`, holding more than :data:`MAX_ITEMS` items, or not
        made by :func:`encode`.
    """
    if not isinstance(text, str):
        raise DataError(f"expected the text of a value, got {type_name(text)}")
    if len(text) > MAX_BYTES:
        raise DataError(f"the value is {len(text)} characters long, more than {MAX_BYTES}")
    _check_nesting(text)
    try:
        tree = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise DataError(f"the value is not valid data text ({error})") from None
    return _Decoder(extra).build(tree, 0)


def _check_nesting(text):
    """Refuse nesting deeper than allowed before the JSON parser recurses into it."""
    limit = 3 * MAX_DEPTH + 8  # a tagged container is up to three JSON levels deep
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                raise DataError(f"the value is nested deeper than {MAX_DEPTH} levels")
        elif char in "]}":
            depth -= 1


class _Decoder:
    def __init__(self, extra):
        self.extra = extra
        self.items = 0

    def count(self, n=1):
        self.items += n
        if self.items > MAX_ITEMS:
            raise DataError(f"the value holds more than {MAX_ITEMS} items")

    def build(self, tree, depth):
        if depth > MAX_DEPTH:
            raise DataError(f"the value is nested deeper than {MAX_DEPTH} levels")
        self.count()
        if tree is None or isinstance(tree, bool | int | float | str):
            return tree
        if isinstance(tree, list):
            return [self.build(item, depth + 1) for item in tree]
        if not isinstance(tree, dict) or not isinstance(tree.get(_TAG), str):
            raise DataError("the value holds a JSON object that no encoder made")
        if self.extra is not None:
            value = self.extra(tree)
            if value is not NotImplemented:
                return value
        kind = tree[_TAG]
        builder = getattr(self, f"_{kind}", None) if kind.isidentifier() else None
        if kind == "...":
            return ...
        if builder is None:
            raise DataError(f"the value holds an unknown kind of item, {kind!r}")
        try:
            return builder(tree, depth)
        except DataError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as error:
            raise DataError(f"the value holds a malformed {kind} ({error!r})") from None

    def _items(self, tree, depth):
        items = tree["v"]
        if not isinstance(items, list):
            raise DataError("a container's items are not a list")
        return [self.build(item, depth + 1) for item in items]

    def _int(self, tree, depth):
        return int(str(tree["v"]))

    def _float(self, tree, depth):
        text = str(tree["v"])
        if text not in ("nan", "inf", "-inf"):
            raise DataError(f"{text!r} is not a special float")
        return float(text)

    def _tuple(self, tree, depth):
        return tuple(self._items(tree, depth))

    def _set(self, tree, depth):
        return set(self._items(tree, depth))

    def _frozenset(self, tree, depth):
        return frozenset(self._items(tree, depth))

    def _dict(self, tree, depth):
        pairs = tree["v"]
        if not isinstance(pairs, list):
            raise DataError("a dict's items are not a list")
        result = {}
        for pair in pairs:
            if not isinstance(pair, list) or len(pair) != 2:
                raise DataError("a dict item is not a pair")
            result[self.build(pair[0], depth + 1)] = self.build(pair[1], depth + 1)
        return result

    def _fraction(self, tree, depth):
        numerator, denominator = (int(str(n)) for n in tree["v"])
        return fractions.Fraction(numerator, denominator)

    def _decimal(self, tree, depth):
        return decimal.Decimal(str(tree["v"]))

    def _datetime(self, tree, depth):
        return datetime.datetime.fromisoformat(str(tree["v"]))

    def _date(self, tree, depth):
        return datetime.date.fromisoformat(str(tree["v"]))

    def _timedelta(self, tree, depth):
        days, seconds, microseconds = (int(n) for n in tree["v"])
        return datetime.timedelta(days=days, seconds=seconds, microseconds=microseconds)

    def _array(self, text):
        import numpy

        raw = base64.b64decode(str(text), validate=True)
        array = numpy.load(io.BytesIO(raw), allow_pickle=False)
        self.count(int(array.size))
        return array

    def _type(self, tree, depth):
        return _PLAIN_TYPES[str(tree["v"])]

    def _dtype(self, tree, depth):
        return self._array(tree["v"]).dtype

    def _nptype(self, tree, depth):
        return self._array(tree["v"]).dtype.type

    def _ndarray(self, tree, depth):
        return self._array(tree["npy"])

    def _npscalar(self, tree, depth):
        return self._array(tree["npy"])[()]

    def _sparse(self, tree, depth):
        from scipy import sparse

        fmt = tree["format"]
        if fmt not in _SPARSE_FORMATS:
            raise DataError(f"{fmt!r} is not a sparse format that crosses")
        arrays = {name: self._array(text) for name, text in dict(tree["arrays"]).items()}
        shape = tuple(int(n) for n in tree["shape"])
        kind = getattr(sparse, f"{fmt}_{'array' if tree['array'] else 'matrix'}")
        if fmt == "coo":
            return kind((arrays["data"], (arrays["row"], arrays["col"])), shape=shape)
        return kind((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape)

    def _estimator(self, tree, depth):
        from sklearn.base import BaseEstimator

        module_name, _, qualname = str(tree["cls"]).partition(":")
        if module_name.split(".")[0] != "sklearn" or not qualname.isidentifier():
            raise DataError(f"{tree['cls']!r} is not a scikit-learn estimator class")
        kind = getattr(importlib.import_module(module_name), qualname, None)
        if not (isinstance(kind, type) and issubclass(kind, BaseEstimator)):
            raise DataError(f"{tree['cls']!r} is not a scikit-learn estimator class")
        params = self.build(tree["params"], depth + 1)
        fitted = self.build(tree["fitted"], depth + 1)
        if not isinstance(params, dict) or not isinstance(fitted, dict):
            raise DataError("an estimator's parameters are not a dict")
        estimator = kind(**params)
        for name, value in fitted.items():
            if not (isinstance(name, str) and name.isidentifier() and name.endswith("_")):
                raise DataError(f"{name!r} is not the name of a fitted attribute")
            if name.startswith("_"):
                raise DataError(f"{name!r} is not the name of a fitted attribute")
            setattr(estimator, name, value)
        return estimator
