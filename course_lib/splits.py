"""Persist cross-validation splits once; map them read-only on every engine.

Sending a dataset to E engines costs E copies of it. Writing each split
``(X_train, y_train, X_test, y_test)`` once with :func:`joblib.dump`
(uncompressed) and opening it on the engines with ``mmap_mode="r"`` costs
one copy per host: the operating system's page cache, shared by every
process that maps the file.

Only load files you trust: like every pickle, a joblib file can run code
when it is loaded.
"""

from __future__ import annotations

import numbers
import os
import socket
from pathlib import Path

import joblib
import numpy as np
import scipy.sparse as sp

from course_lib._files import atomic_file
from course_lib._validation import check_file, raise_remote_file_not_found

__all__ = ["load_cv_split", "persist_cv_splits", "remove_cv_splits", "warm_page_cache"]

# The first key of every stored split. joblib writes a dict's keys in order,
# so the marker sits in the file's first bytes: a foreign file is refused
# before it is unpickled, and a split of another format version after.
_MARKER = "__course_lib_cv_split__"
_FORMAT_VERSION = 1
_HEADER_BYTES = 64
_PARTS = ("X_train", "y_train", "X_test", "y_test")


def _check_path_like(path, name="path"):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a str or a path, but got {path!r}.")
    return Path(path).expanduser().resolve()


def _check_data(X, y):
    if sp.issparse(X):
        X = X.tocsr()
    elif isinstance(X, (str, bytes)) or X is None:
        raise TypeError(f"X must be an array or a scipy.sparse matrix, but got {X!r}.")
    else:
        X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (samples, features), but has shape {X.shape}.")
    if X.shape[0] == 0:
        raise ValueError(f"X is empty (shape {X.shape}): there is nothing to split.")
    if y is None:
        raise TypeError("y must be an array of targets, but got None.")
    y = np.asarray(y)
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        raise ValueError(
            f"X and y have different lengths: X has {X.shape[0]} samples, y has "
            f"{y.shape[0] if y.ndim else 'none (a scalar)'}."
        )
    for label, array in (("X", X.data if sp.issparse(X) else X), ("y", y)):
        if array.dtype.hasobject:
            raise ValueError(
                f"{label} has dtype {array.dtype}: objects cannot be memory-mapped. "
                f"Convert {label} to numbers first."
            )
    return X, y


def _check_indices(indices, n_samples, what):
    indices = np.asarray(indices)
    if indices.dtype == bool:
        raise ValueError(f"{what} is a boolean mask; give index arrays.")
    if indices.ndim != 1 or indices.size == 0 or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"{what} must be a non-empty 1-D array of ints, but got {indices!r}.")
    if indices.min() < -n_samples or indices.max() >= n_samples:
        raise ValueError(f"{what} has indices out of range for {n_samples} samples.")
    return indices


def _check_splits(cv, X, y, groups):
    n_samples = X.shape[0]
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        if cv < 2:
            raise ValueError(f"cv == {cv}: an int cv is a number of folds, must be >= 2.")
        from sklearn.model_selection import KFold  # here: importing sklearn takes seconds

        cv = KFold(n_splits=int(cv))
    if isinstance(cv, (str, bytes)) or not (hasattr(cv, "split") or hasattr(cv, "__iter__")):
        raise TypeError(
            f"cv must be an int, a scikit-learn splitter or an iterable of "
            f"(train, test) index pairs, but got {cv!r}."
        )
    try:
        splits = list(cv.split(X, y, groups) if hasattr(cv, "split") else cv)
    except (ValueError, TypeError) as error:  # scikit-learn's, about the user's cv and data
        raise type(error)(f"cv {cv!r} cannot split X and y: {error}") from error
    if not splits:
        raise ValueError(f"cv {cv!r} yields no split: there is nothing to persist.")
    checked = []
    for i, pair in enumerate(splits):
        if not isinstance(pair, (str, bytes)) and hasattr(pair, "__iter__"):
            pair = tuple(pair)
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise ValueError(f"split {i} of cv must be a (train, test) pair, but got {pair!r}.")
        train, test = pair
        checked.append(
            (
                _check_indices(train, n_samples, f"train indices of split {i}"),
                _check_indices(test, n_samples, f"test indices of split {i}"),
            )
        )
    return checked


def _take(X, indices):
    part = X[indices]
    if sp.issparse(part):
        # Canonical (sorted, no duplicates) now, so that code reading the
        # read-only map never needs to sort it in place.
        part.sum_duplicates()
        part.sort_indices()
    return part


def _atomic_dump(obj, path):
    """Dump ``obj`` uncompressed (compressed dumps cannot be mapped), atomically."""
    with atomic_file(path, "wb") as file:
        joblib.dump(obj, file)


def persist_cv_splits(X, y, cv, folder, name="data", *, groups=None):
    """Write every cross-validation split once, ready to be memory-mapped.

    Parameters
    ----------
    X : array-like or scipy.sparse matrix of shape (n_samples, n_features)
        Dense data is stored as numpy arrays; sparse data as CSR (its
        ``data``, ``indices`` and ``indptr`` are mapped on load).
    y : array-like of shape (n_samples,) or (n_samples, n_outputs)
    cv : int, scikit-learn splitter or iterable of (train, test) pairs
        An int is a number of :class:`~sklearn.model_selection.KFold` folds.
    folder : str or path
        Created if missing. Splits already there with the same names are
        replaced; any other file with such a name is refused, and nothing is
        written.
    name : str, default="data"
        Prefix of the file names: ``{name}_split{i}.joblib``.
    groups : array-like, optional
        Passed to ``cv.split`` (for group splitters).

    Returns
    -------
    list of pathlib.Path
        Absolute paths, one per split, in the order of ``cv``.

    Raises
    ------
    TypeError, ValueError
        Naming the bad value: X and y of different lengths, empty X, a
        ``cv`` that yields no split, a folder that cannot be written.
    NotADirectoryError, FileExistsError
        Before anything is written: ``folder`` is (or lies under) a file, or
        holds a file of another kind under a split's name.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> X, y = np.arange(20.0).reshape(10, 2), np.arange(10) % 2
    >>> paths = persist_cv_splits(X, y, cv=5, folder=tempfile.mkdtemp())
    >>> len(paths), paths[0].name
    (5, 'data_split0.joblib')
    >>> X_train, y_train, X_test, y_test = load_cv_split(paths[0])
    >>> X_train.shape, X_test.shape, type(X_train).__name__
    ((8, 2), (2, 2), 'memmap')
    >>> remove_cv_splits(paths)
    """
    X, y = _check_data(X, y)
    if not isinstance(name, str) or not name or os.sep in name or name.startswith("."):
        raise ValueError(f"name must be a non-empty file name prefix, but got {name!r}.")
    splits = _check_splits(cv, X, y, groups)
    given, folder = folder, _check_path_like(folder, "folder")
    for place in (folder, *folder.parents):
        if place.exists():
            if not place.is_dir():
                raise NotADirectoryError(
                    f"folder == {str(given)!r}: {str(place)!r} is a file, not a folder. "
                    f"Give a folder path."
                )
            break
    width = len(str(len(splits) - 1))
    paths = [folder / f"{name}_split{i:0{width}d}.joblib" for i in range(len(splits))]
    for path in paths:
        if path.exists() and not _is_split(path):
            raise FileExistsError(
                f"{str(path)!r} exists and is not a split written by persist_cv_splits: "
                f"it was left unchanged, and nothing was written. Give another folder "
                f"or name (name={name!r})."
            )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for i, ((train, test), path) in enumerate(zip(splits, paths, strict=True)):
            stored = {_MARKER: _FORMAT_VERSION, "index": i, "n_splits": len(splits)}
            stored.update(
                X_train=_take(X, train), y_train=y[train], X_test=_take(X, test), y_test=y[test]
            )
            _atomic_dump(stored, path)
    except OSError as error:
        raise ValueError(f"folder {str(folder)!r} cannot be written: {error}") from error
    return paths


def _is_split(path):
    try:
        _check_header(path)
    except (OSError, ValueError):
        return False
    return True


def _check_header(path):
    with open(path, "rb") as file:
        head = file.read(_HEADER_BYTES)
    if _MARKER.encode() not in head:
        raise ValueError(
            f"{str(path)!r} is not a CV split written by persist_cv_splits "
            f"(no course_lib marker at the start of the file)."
        )


def load_cv_split(path, mmap_mode="r"):
    """Open one split written by :func:`persist_cv_splits`, memory-mapped.

    Parameters
    ----------
    path : str or path
    mmap_mode : {"r", "c"}, default="r"
        ``"r"``: read-only, writing into an array raises and the file never
        changes. ``"c"``: copy on write, writes stay in this process.

    Returns
    -------
    X_train, y_train, X_test, y_test
        :class:`numpy.memmap` arrays, or CSR matrices whose ``data``,
        ``indices`` and ``indptr`` are memmaps.

    Raises
    ------
    ValueError
        If ``mmap_mode`` is not "r" or "c", or the file is not a split
        written by :func:`persist_cv_splits` (foreign, corrupt, truncated).
    FileNotFoundError
        If there is no such file.

    Examples
    --------
    >>> X_train, y_train, X_test, y_test = load_cv_split(paths[0])  # doctest: +SKIP
    >>> X_train[0, 0] = 1.0  # doctest: +SKIP
    Traceback (most recent call last):
    ValueError: assignment destination is read-only
    """
    path = _check_path_like(path)
    if mmap_mode not in ("r", "c"):
        raise ValueError(
            f"mmap_mode == {mmap_mode!r}: only 'r' (read-only) and 'c' (copy on "
            f"write) keep the file unchanged."
        )
    _check_header(path)
    try:
        stored = joblib.load(path, mmap_mode=mmap_mode)
    except Exception as error:
        raise ValueError(
            f"{str(path)!r} is a corrupt CV split and cannot be loaded: {error!r}"
        ) from error
    if not isinstance(stored, dict) or stored.get(_MARKER) != _FORMAT_VERSION:
        found = stored.get(_MARKER) if isinstance(stored, dict) else type(stored).__name__
        raise ValueError(
            f"{str(path)!r} is not a CV split of format {_FORMAT_VERSION} written by "
            f"persist_cv_splits (found {found!r})."
        )
    missing = [part for part in _PARTS if part not in stored]
    if missing:
        raise ValueError(f"{str(path)!r} is a corrupt CV split: {missing} are missing.")
    return tuple(stored[part] for part in _PARTS)


def _as_path_list(paths):
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not hasattr(paths, "__iter__"):
        raise TypeError(f"paths must be a path or an iterable of paths, but got {paths!r}.")
    return [_check_path_like(path) for path in paths]


def _read_files(paths, chunk_bytes=4 * 2**20):
    """Run on an engine: read every file once, so that its pages are cached."""
    buffer = bytearray(chunk_bytes)
    total = 0
    for path in paths:
        try:
            with open(path, "rb", buffering=0) as file:
                while n := file.readinto(buffer):
                    total += n
        except FileNotFoundError:
            host = socket.gethostname()
            raise FileNotFoundError(f"{path!r} does not exist on host {host!r}.") from None
    return socket.gethostname(), total


def warm_page_cache(view, paths):
    """Read every file once on every host, so that the first task does not wait.

    One engine per host (of the view's engines) reads the files; the other
    engines of that host then map pages already in memory.

    Parameters
    ----------
    view : ipyparallel.Client or DirectView
    paths : path or iterable of paths
        Visible on every host at the same place (a local disk copy or a
        shared file system).

    Returns
    -------
    dict
        ``{hostname: bytes_read}``.

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        Before any task, if a path is not a file here; after, if an engine
        cannot find it on its host.

    Examples
    --------
    >>> warm_page_cache(client, paths)  # doctest: +SKIP
    {'laptop': 40001234}
    """
    import ipyparallel

    from course_lib._engines import one_engine_per_host
    from course_lib.memory import _as_direct_view

    view = _as_direct_view(view, name="view")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not hasattr(paths, "__iter__"):
        raise TypeError(f"paths must be a path or an iterable of paths, but got {paths!r}.")
    paths = [str(check_file(path, f"paths[{i}]").resolve()) for i, path in enumerate(paths)]
    readers = one_engine_per_host(view)
    readers.block = False
    try:
        return dict(sorted(readers.apply_async(_read_files, paths).get()))
    except (ipyparallel.error.CompositeError, ipyparallel.error.RemoteError) as error:
        raise_remote_file_not_found(error, "paths", paths)
        raise


def remove_cv_splits(paths):
    """Delete split files written by :func:`persist_cv_splits`.

    Every file is checked first: if one is not a split, nothing is deleted.
    Files already gone are skipped.

    Parameters
    ----------
    paths : path or iterable of paths

    Raises
    ------
    ValueError
        If a file is not a split written by :func:`persist_cv_splits`.
    """
    existing = [path for path in _as_path_list(paths) if path.exists()]
    for path in existing:
        _check_header(path)
    for path in existing:
        path.unlink(missing_ok=True)
