"""course_lib.splits against real files and the real 2-engine cluster."""

import hashlib
import os
import re
import socket
import subprocess
import sys
import textwrap
import time

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.model_selection import KFold, PredefinedSplit, StratifiedKFold

from course_lib.memory import process_memory
from course_lib.splits import (
    load_cv_split,
    persist_cv_splits,
    remove_cv_splits,
    warm_page_cache,
)


def _data(n=60, d=4, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.integers(0, 2, n)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_split_equal(loaded, X, y, train, test):
    X_train, y_train, X_test, y_test = loaded
    dense = [m.toarray() if sp.issparse(m) else np.asarray(m) for m in (X_train, X_test)]
    expected = [m.toarray() if sp.issparse(m) else m for m in (X[train], X[test])]
    np.testing.assert_array_equal(dense[0], expected[0])
    np.testing.assert_array_equal(dense[1], expected[1])
    np.testing.assert_array_equal(y_train, y[train])
    np.testing.assert_array_equal(y_test, y[test])


def test_dense_splits_equal_in_memory_splits(tmp_path):
    X, y = _data()
    cv = KFold(3, shuffle=True, random_state=0)
    paths = persist_cv_splits(X, y, cv, tmp_path / "splits")
    assert len(paths) == 3
    assert all(p.is_absolute() and p.is_file() for p in paths)
    # Only the finished files are left: no temporary file lingers.
    assert sorted(p.name for p in (tmp_path / "splits").iterdir()) == sorted(p.name for p in paths)
    for path, (train, test) in zip(paths, cv.split(X, y), strict=True):
        loaded = load_cv_split(path)
        _assert_split_equal(loaded, X, y, train, test)
        for array in loaded:
            assert isinstance(array, np.memmap)
            assert not array.flags.writeable


@pytest.mark.parametrize("kind", [sp.csr_matrix, sp.csr_array, sp.coo_matrix])
def test_sparse_splits_are_mapped_csr(tmp_path, kind):
    X = kind(sp.random(50, 30, density=0.2, format="csr", random_state=1))
    y = np.arange(50) % 3
    paths = persist_cv_splits(X, y, 5, tmp_path)
    for path, (train, test) in zip(paths, KFold(5).split(X), strict=True):
        X_train, y_train, X_test, y_test = load_cv_split(path)
        _assert_split_equal((X_train, y_train, X_test, y_test), X.tocsr(), y, train, test)
        for matrix in (X_train, X_test):
            assert matrix.format == "csr"
            assert isinstance(matrix, sp.sparray) == isinstance(X, sp.sparray)
            assert matrix.has_canonical_format
            for array in (matrix.data, matrix.indices, matrix.indptr):
                assert isinstance(array, np.memmap)
                assert not array.flags.writeable


def test_cv_int_splitter_and_pairs_give_the_same_files(tmp_path):
    X, y = _data()
    by_int = persist_cv_splits(X, y, 4, tmp_path / "int")
    pairs = list(KFold(4).split(X))
    by_pairs = persist_cv_splits(X, y, iter(pairs), tmp_path / "pairs", name="pairs")
    assert [p.name for p in by_pairs][0] == "pairs_split0.joblib"
    for a, b, (train, test) in zip(by_int, by_pairs, pairs, strict=True):
        _assert_split_equal(load_cv_split(a), X, y, train, test)
        _assert_split_equal(load_cv_split(b), X, y, train, test)
    stratified = StratifiedKFold(3)
    paths = persist_cv_splits(X, y, stratified, tmp_path / "strat")
    for path, (train, test) in zip(paths, stratified.split(X, y), strict=True):
        _assert_split_equal(load_cv_split(path), X, y, train, test)


def test_writing_into_a_read_only_split_raises_and_file_is_unchanged(tmp_path):
    X, y = _data()
    Xs = sp.csr_matrix(X)
    dense_path = persist_cv_splits(X, y, 2, tmp_path, name="dense")[0]
    sparse_path = persist_cv_splits(Xs, y, 2, tmp_path, name="sparse")[0]
    before = {p: _sha(p) for p in (dense_path, sparse_path)}

    X_train, y_train, _, _ = load_cv_split(dense_path)
    with pytest.raises(ValueError, match="read-only"):
        X_train[0, 0] = 123.0
    with pytest.raises(ValueError, match="read-only"):
        y_train[:] = 7
    Xs_train, _, _, _ = load_cv_split(sparse_path)
    with pytest.raises(ValueError, match="read-only"):
        Xs_train.data[:] = 123.0
    with pytest.raises(ValueError, match="read-only"):
        Xs_train *= 2  # in place on the mapped data
    del X_train, y_train, Xs_train
    assert {p: _sha(p) for p in before} == before


def test_copy_on_write_changes_memory_not_the_file(tmp_path):
    X, y = _data()
    path = persist_cv_splits(X, y, 2, tmp_path)[0]
    before = _sha(path)
    X_train, _, _, _ = load_cv_split(path, mmap_mode="c")
    X_train[0, 0] = 123.0
    assert X_train[0, 0] == 123.0
    del X_train
    assert _sha(path) == before
    assert load_cv_split(path)[0][0, 0] != 123.0


@pytest.mark.parametrize("mode", ["r+", "w+", None, "rw"])
def test_load_refuses_writable_modes(tmp_path, mode):
    X, y = _data()
    path = persist_cv_splits(X, y, 2, tmp_path)[0]
    with pytest.raises(ValueError, match=re.escape(repr(mode))):
        load_cv_split(path, mmap_mode=mode)


def test_corrupt_and_foreign_files_give_a_clear_error(tmp_path):
    X, y = _data(n=2000, d=50)
    path = persist_cv_splits(X, y, 2, tmp_path)[0]
    truncated = tmp_path / "truncated.joblib"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    foreign = tmp_path / "foreign.joblib"
    joblib.dump({"X_train": X, "y_train": y, "X_test": X, "y_test": y}, foreign)
    garbage = tmp_path / "garbage.joblib"
    garbage.write_bytes(os.urandom(1000))
    empty = tmp_path / "empty.joblib"
    empty.write_bytes(b"")
    for bad in (truncated, foreign, garbage, empty):
        with pytest.raises(ValueError, match=re.escape(str(bad))):
            load_cv_split(bad)
    with pytest.raises(FileNotFoundError):
        load_cv_split(tmp_path / "missing.joblib")
    with pytest.raises(TypeError, match="42"):
        load_cv_split(42)


def test_a_split_of_another_format_version_is_refused(tmp_path):
    path = tmp_path / "future.joblib"
    joblib.dump({"__course_lib_cv_split__": 999, "X_train": 1}, path)
    with pytest.raises(ValueError, match="999"):
        load_cv_split(path)


_WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from course_lib.splits import persist_cv_splits
    X = np.random.default_rng(0).standard_normal((100_000, 50))  # 40 MB
    persist_cv_splits(X, np.zeros(len(X)), 5, sys.argv[1])
    """
)


def test_a_crash_mid_write_never_leaves_a_split_that_loads(tmp_path):
    """SIGKILL the writer while it writes the third split."""
    folder = tmp_path / "crash"
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(folder)])
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and writer.poll() is None:
            if folder.is_dir() and any(".data_split2" in p.name for p in folder.iterdir()):
                break
            time.sleep(0.002)
        assert writer.poll() is None, "the writer finished before the test could kill it"
    finally:
        writer.kill()
        writer.wait()
    X = np.random.default_rng(0).standard_normal((100_000, 50))
    names = sorted(p.name for p in folder.iterdir())
    finished = [folder / n for n in names if not n.startswith(".")]
    temporary = [folder / n for n in names if n.startswith(".")]
    assert folder / "data_split0.joblib" in finished
    assert folder / "data_split4.joblib" not in finished
    for path, (train, test) in zip(finished, KFold(5).split(X), strict=False):
        _assert_split_equal(load_cv_split(path), X, np.zeros(len(X)), train, test)
    train, test = list(KFold(5).split(X))[2]
    for path in temporary:  # what the crash left behind: refused, or complete
        try:
            loaded = load_cv_split(path)
        except ValueError as error:
            assert str(path) in str(error)
        else:
            _assert_split_equal(loaded, X, np.zeros(len(X)), train, test)


def test_errors_name_the_bad_value(tmp_path):
    X, y = _data()
    with pytest.raises(ValueError, match=r"60 samples, y has 59"):
        persist_cv_splits(X, y[:-1], 2, tmp_path)
    with pytest.raises(ValueError, match=r"empty \(shape \(0, 4\)\)"):
        persist_cv_splits(np.empty((0, 4)), np.empty(0), 2, tmp_path)
    with pytest.raises(ValueError, match=r"cv \[\] yields no split"):
        persist_cv_splits(X, y, [], tmp_path)
    no_split = PredefinedSplit(np.full(len(X), -1))  # every sample in no test fold
    with pytest.raises(ValueError, match=r"(?s)PredefinedSplit.* yields no split"):
        persist_cv_splits(X, y, no_split, tmp_path)
    with pytest.raises(ValueError, match="cv == 1"):
        persist_cv_splits(X, y, 1, tmp_path)
    with pytest.raises(TypeError, match="'five'"):
        persist_cv_splits(X, y, "five", tmp_path)
    with pytest.raises(ValueError, match="split 0"):
        persist_cv_splits(X, y, [(np.arange(10), np.array([99]))], tmp_path)
    with pytest.raises(ValueError, match="shape"):
        persist_cv_splits(X[:, 0], y, 2, tmp_path)
    with pytest.raises(ValueError, match="object"):
        persist_cv_splits(X.astype(object), y, 2, tmp_path)
    with pytest.raises(ValueError, match="'a/b'"):
        persist_cv_splits(X, y, 2, tmp_path, name="a/b")
    # A folder under a regular file cannot be created, even by root.
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(NotADirectoryError, match=re.escape(str(blocker / "sub"))):
        persist_cv_splits(X, y, 2, blocker / "sub")
    assert list(tmp_path.iterdir()) == [blocker]  # nothing was written


def test_a_file_of_another_kind_under_a_split_name_is_never_replaced(tmp_path):
    X, y = _data()
    paths = persist_cv_splits(X, y, 2, tmp_path)
    assert persist_cv_splits(X, y, 2, tmp_path) == paths  # splits are replaced
    precious = tmp_path / "data_split1.joblib"
    precious.write_text("my own model, saved under an unlucky name")
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(FileExistsError, match=re.escape(str(precious))):
        persist_cv_splits(X, y, 2, tmp_path)
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_remove_cv_splits_removes_only_splits(tmp_path):
    X, y = _data()
    paths = persist_cv_splits(X, y, 3, tmp_path)
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me, I am long enough to hold a header")
    with pytest.raises(ValueError, match="precious"):
        remove_cv_splits([*paths, precious])
    assert all(p.exists() for p in paths) and precious.exists()
    remove_cv_splits(paths)
    assert not any(p.exists() for p in paths)
    remove_cv_splits(paths)  # already gone: nothing to do
    remove_cv_splits(str(precious.with_name("never_there.joblib")))
    assert precious.exists()


# Run on the engines: they import this module (tests/ is on their PYTHONPATH).


def _mapped_on_engine(path):
    import numpy as np
    import scipy.sparse as sp

    from course_lib.splits import load_cv_split

    X_train, y_train, X_test, y_test = load_cv_split(path)
    arrays = [X_train.data if sp.issparse(X_train) else X_train, y_train]
    return {
        "memmap": [isinstance(a, np.memmap) for a in arrays],
        "writeable": [a.flags.writeable for a in arrays],
        "filename": [str(a.filename) for a in arrays],
        "sum": float(X_train.sum()),
    }


_held = {}


def _map_and_touch(path):
    """Map a split, read every page, keep it mapped; report memory."""
    from course_lib.splits import load_cv_split

    before = process_memory()
    _held["split"] = load_cv_split(path)
    _held["sum"] = float(_held["split"][0].sum())
    return before


def _release():
    _held.clear()
    return process_memory()


@pytest.mark.parametrize("sparse", [False, True])
def test_engines_load_memory_maps(client, tmp_path, sparse):
    X, y = _data(n=200, d=5)
    X = sp.csr_matrix(X) if sparse else X
    path = persist_cv_splits(X, y, 4, tmp_path)[1]
    replies = client[:].apply_sync(_mapped_on_engine, str(path))
    train = next(t for i, (t, _) in enumerate(KFold(4).split(X)) if i == 1)
    for reply in replies:
        assert reply["memmap"] == [True, True]
        assert reply["writeable"] == [False, False]
        assert reply["filename"] == [str(path), str(path)]
        assert reply["sum"] == pytest.approx(float(X[train].sum()))


def test_engines_share_one_copy_of_a_mapped_split(client, tmp_path):
    """Two engines map the same 40 MB: both see it (RSS), neither owns it (USS)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100_000, 50))
    path = persist_cv_splits(X, np.zeros(len(X)), [(np.arange(len(X)), np.arange(10))], tmp_path)[0]
    size_mb = X.nbytes / 2**20
    engine_a, engine_b = client[0], client[1]
    try:
        before_a = engine_a.apply_sync(_map_and_touch, str(path))
        before_b = engine_b.apply_sync(_map_and_touch, str(path))
        after_a = engine_a.apply_sync(process_memory)
        after_b = engine_b.apply_sync(process_memory)
    finally:
        client[:].apply_sync(_release)
    for before, after in ((before_a, after_a), (before_b, after_b)):
        assert after["rss_mb"] - before["rss_mb"] > 0.9 * size_mb
        assert after["uss_mb"] - before["uss_mb"] < 0.2 * size_mb
        assert after["pss_mb"] - before["pss_mb"] < 0.7 * size_mb


def test_warm_page_cache_reads_every_file_once_per_host(client, tmp_path):
    X, y = _data(n=500, d=20)
    paths = persist_cv_splits(X, y, 3, tmp_path)
    total = sum(p.stat().st_size for p in paths)
    assert warm_page_cache(client, paths) == {socket.gethostname(): total}
    assert warm_page_cache(client[:], [str(p) for p in paths]) == {socket.gethostname(): total}
    assert warm_page_cache(client[1], paths[0]) == {socket.gethostname(): paths[0].stat().st_size}
    with pytest.raises(TypeError, match="'not a view'"):
        warm_page_cache("not a view", paths)
