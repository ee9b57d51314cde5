"""The cluster's temporary folders: one per cluster, marked with its owner, swept when stale."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import psutil

_FOLDER_PREFIX = "course-ipp-"
_OWNER_FILE = "owner"


def _owner_alive(folder):
    """False when the process that made a cluster folder is gone (or its PID was reused)."""
    try:
        pid, created = (folder / _OWNER_FILE).read_text().split()
        return abs(psutil.Process(int(pid)).create_time() - float(created)) < 1.0
    except (OSError, ValueError):
        return True  # not ours, or being written: leave it
    except psutil.Error:
        return False


def remove_stale_folders(folder=None):
    """Remove the cluster folders whose owner process is gone (as joblib does).

    A kernel that dies without its exit hooks (killed, out of memory) leaves
    its ``course-ipp-<pid>-*`` folder behind, connection files and key
    included. Folders of live owners, and any folder without an owner mark,
    are left alone.

    Parameters
    ----------
    folder : path, optional
        Where cluster folders are made. Default: the temporary folder.

    Returns
    -------
    list of str
        The folders removed.

    Examples
    --------
    >>> isinstance(remove_stale_folders(), list)
    True
    """
    root = Path(folder or tempfile.gettempdir())
    removed = []
    for path in root.glob(f"{_FOLDER_PREFIX}*"):
        if path.is_dir() and not path.is_symlink() and not _owner_alive(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    return removed


def make_folder():
    """A fresh ``course-ipp-<pid>-*`` folder, marked with its owner."""
    remove_stale_folders()
    folder = Path(tempfile.mkdtemp(prefix=f"{_FOLDER_PREFIX}{os.getpid()}-"))
    me = psutil.Process()
    (folder / _OWNER_FILE).write_text(f"{me.pid} {me.create_time()!r}\n")
    return str(folder)
