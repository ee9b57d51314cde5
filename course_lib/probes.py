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


# -- lesson 2 -------------------------------------------------------------------


# -- lesson 3 -------------------------------------------------------------------


# -- lesson 4 -------------------------------------------------------------------


# -- lesson 5 -------------------------------------------------------------------


# -- lesson 6 -------------------------------------------------------------------


# -- lesson 7 -------------------------------------------------------------------
