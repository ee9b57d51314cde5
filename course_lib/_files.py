"""Writing a file so that no reader ever sees it half-written: the one atomic write."""

from __future__ import annotations

import contextlib
import filecmp
import os
import uuid
from pathlib import Path


@contextlib.contextmanager
def atomic_file(destination, mode="wb", *, overwrite=True, **open_kwargs):
    """Write into a hidden temporary file beside ``destination``, flush it to disk, rename it.

    A crash leaves at worst a hidden ``.<name>.<hex>.tmp`` file, never a
    half-written file under the final name. The temporary file gets the
    permissions the umask gives (as ``open`` would), and the folder is made
    if missing. With ``overwrite=False``, an existing ``destination`` is kept
    when it already holds the very bytes written, and refused (left
    unchanged, with a FileExistsError) when it differs.

    Parameters
    ----------
    destination : str or path
    mode : {"wb", "w"}, default="wb"
    overwrite : bool, default=True
    **open_kwargs
        Passed to :func:`open` (``encoding``, ``newline``).

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "answer.txt"
    >>> with atomic_file(path, "w") as handle:
    ...     _ = handle.write("42")
    >>> path.read_text()
    '42'
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = destination.with_name(f".{destination.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(tmp, mode.replace("w", "x"), **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if not overwrite and destination.exists():
            if not filecmp.cmp(tmp, destination, shallow=False):
                raise FileExistsError(
                    f"path == {str(destination)!r} already holds another file, which was "
                    f"left unchanged: pass overwrite=True to replace it, or give a new path."
                )
            tmp.unlink()  # the same bytes are already there
            return
        os.replace(tmp, destination)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
