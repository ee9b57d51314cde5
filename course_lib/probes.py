"""Functions the tests send to the engines, through the student's own cluster.

A test cell that needs work done on the student's engines (a function whose
result the test knows in advance, a pause of a length it drew) cannot send its
own code to the student's kernel: only names and data cross
(:mod:`course_lib.checking`). It names one of these functions instead, with
``student.probe("name", **parameters)``, and the student's kernel imports it
from here. Each takes its parameters as plain data and returns plain data.

Examples
--------
>>> affine_with_pid(3, a=2, b=1)[0]
7
"""

import os
import time

__all__ = ["affine_with_pid", "timed_pause"]


# -- shared by several lessons --------------------------------------------------


def affine_with_pid(x, a=1, b=0, seconds=0.0):
    """``(a * x + b, pid)`` after sleeping ``seconds``: which engine computed what."""
    time.sleep(seconds)
    return a * x + b, os.getpid()


def timed_pause(seconds):
    """Sleep ``seconds``; return ``(pid, seconds measured on the engine)``."""
    start = time.perf_counter()
    time.sleep(seconds)
    return os.getpid(), time.perf_counter() - start


# -- lesson 1 -------------------------------------------------------------------


def _globals(variable):
    """The namespace of this process's notebook or engine, and ``variable`` checked."""
    from course_lib.checking import _namespace

    if not isinstance(variable, str) or not variable.isidentifier():
        raise ValueError(f"variable == {variable!r}, must be a Python identifier.")
    return _namespace(), variable


def fill_global(variable, size_mib):
    """Hold a float64 array of ``size_mib`` MiB, every value written, as the global ``variable``.

    Run on an engine, its RSS grows by about ``size_mib`` MiB until
    :func:`forget_global` removes the array. Returns the array's size in bytes.

    Examples
    --------
    >>> fill_global("_probe_block", 1)
    1048576
    >>> forget_global("_probe_block")
    """
    import numpy as np

    if isinstance(size_mib, bool) or not isinstance(size_mib, int) or size_mib < 0:
        raise ValueError(f"size_mib == {size_mib!r}, must be a whole number of MiB >= 0.")
    namespace, variable = _globals(variable)
    block = np.ones(size_mib * 2**20 // 8, dtype=np.float64)  # ones: every page written
    namespace[variable] = block
    return int(block.nbytes)


def array_info(variable):
    """``(dtype, nbytes)`` of the NumPy array in the global ``variable``; None if there is none.

    Examples
    --------
    >>> fill_global("_probe_block", 1)
    1048576
    >>> array_info("_probe_block"), array_info("_probe_nothing")
    (('float64', 1048576), None)
    >>> forget_global("_probe_block")
    """
    import numpy as np

    namespace, variable = _globals(variable)
    value = namespace.get(variable)
    if not isinstance(value, np.ndarray):
        return None
    return str(value.dtype), int(value.nbytes)


def forget_global(variable):
    """Remove the global ``variable`` (if any) and hand freed memory back to the system.

    Freed heap pages can stay resident and be reused by the next array, which
    would then not raise the process's RSS: they are returned to the system
    (glibc's ``malloc_trim``, where there is one) before a test measures.
    """
    import ctypes
    import gc

    namespace, variable = _globals(variable)
    namespace.pop(variable, None)
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


# -- lesson 2 -------------------------------------------------------------------


# -- lesson 3 -------------------------------------------------------------------


def write_random_npy(path, n_values, seed):
    """Save ``numpy.random.default_rng(seed).standard_normal(n_values)`` at ``path``.

    The file is written by :func:`numpy.save` (a ``.npy`` file); the test
    computes the same values itself from ``seed``. Returns their size in bytes.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "values.npy")
    >>> write_random_npy(path, 4, seed=0)
    32
    """
    import numpy as np

    values = np.random.default_rng(seed).standard_normal(n_values)
    np.save(path, values)
    return int(values.nbytes)


def read_global_map(variable):
    """Read every value of the array in the global ``variable``; describe it, as data.

    Reading touches every page, so a memory map's pages come into the
    process (and into its PSS). Returns ``{"type", "writeable", "shape",
    "sum"}``, or None when ``variable`` holds no NumPy array.

    Examples
    --------
    >>> fill_global("_probe_block", 1)
    1048576
    >>> read_global_map("_probe_block")["sum"]
    131072.0
    >>> forget_global("_probe_block")
    """
    import numpy as np

    namespace, variable = _globals(variable)
    value = namespace.get(variable)
    if not isinstance(value, np.ndarray):
        return None
    return {
        "type": type(value).__name__,
        "writeable": bool(value.flags.writeable),
        "shape": tuple(int(n) for n in value.shape),
        "sum": float(value.sum()),
    }


def read_splits(paths):
    """Open every split file of ``paths`` memory-mapped, as lesson 3's tests read them.

    A file made by :func:`course_lib.splits.persist_cv_splits` opens with
    :func:`course_lib.splits.load_cv_split`; any other ``joblib`` file must
    hold the four parts ``(X_train, y_train, X_test, y_test)``. Returns one
    dict per path, in order: ``{"path", "mapped", "parts"}`` (``mapped``:
    both ``X`` parts are memory maps; ``parts``: the four as arrays), or
    ``{"path", "holds"}`` (the type found) when the file holds something else.
    """
    import joblib
    import numpy as np

    from course_lib.splits import load_cv_split

    found = []
    for path in list(paths):
        stored = joblib.load(path, mmap_mode="r")
        if isinstance(stored, dict):
            parts = load_cv_split(path)
        elif isinstance(stored, tuple | list) and len(stored) == 4:
            parts = tuple(stored)
        else:
            found.append({"path": str(path), "holds": type(stored).__name__})
            continue
        mapped = isinstance(parts[0], np.memmap) and isinstance(parts[2], np.memmap)
        found.append(
            {"path": str(path), "mapped": mapped, "parts": tuple(np.asarray(p) for p in parts)}
        )
    return found


# -- lesson 4 -------------------------------------------------------------------


# -- lesson 5 -------------------------------------------------------------------


# -- lesson 6 -------------------------------------------------------------------


# -- lesson 7 -------------------------------------------------------------------
