"""What "nothing changed" means in tests/test_bad_input.py: files and child processes.

A :func:`snapshot` records every file and folder under some folders (its
size, modification time and a hash of its bytes) and the child processes of
this process. Two snapshots, taken before and after a bad call, must be equal.
"""

import hashlib
import os
import time
from pathlib import Path

from course_lib import _processes


def files_under(*folders):
    """{path: (kind, size, mtime_ns, sha256)} for everything under the folders."""
    found = {}
    for folder in folders:
        folder = Path(folder)
        if not folder.exists():
            continue
        for root, dirs, files in os.walk(folder):
            for name in dirs:
                found[Path(root, name)] = ("folder",)
            for name in files:
                path = Path(root, name)
                stat = path.stat()
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                found[path] = ("file", stat.st_size, stat.st_mtime_ns, digest)
    return found


def child_processes():
    """PIDs of the live (not zombie) descendants of this process."""
    return {proc.pid for proc in _processes.process_tree(os.getpid())[1:]}


def snapshot(*folders):
    """(files under the folders, child processes), to compare before and after."""
    return files_under(*folders), child_processes()


def assert_unchanged(before, folders, timeout=10.0):
    """The files are as they were, and no child process was started.

    A new process gets ``timeout`` seconds to exit before the check fails.
    Processes that ended meanwhile are not counted: another test's engines
    may still be on their way out.
    """
    files, children = before
    now = files_under(*folders)
    paths = set(now) | set(files)
    changed = sorted(str(path) for path in paths if now.get(path) != files.get(path))
    assert not changed, f"files created, changed or removed: {changed}"
    deadline = time.monotonic() + timeout
    while (new := child_processes() - children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not new, f"new child processes: {sorted(new)}"
