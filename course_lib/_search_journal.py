"""The journal of a search: one JSON line per result, to resume it (private to search).

A journal names every task by ``(round, candidate, split)`` and holds its
result, after a header whose fingerprint says which search wrote it: only
that search, or an empty file, is ever appended to.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import joblib
import numpy as np

JOURNAL_FORMAT = "course_lib.search journal"
JOURNAL_VERSION = 1


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value)


def _file_digest(path, chunk_bytes=4 * 2**20):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def _fingerprint(strategy, estimator, candidates, split_paths, rounds, settings):
    """What makes two searches the same: their results can be merged."""
    parts = {
        "strategy": strategy,
        "estimator": joblib.hash(estimator),
        "candidates": joblib.hash(candidates),
        "splits": [_file_digest(path) for path in split_paths],
        "rounds": rounds,
        "settings": joblib.hash(settings),
    }
    text = json.dumps(parts, sort_keys=True, default=_jsonable)
    return hashlib.sha256(text.encode()).hexdigest()


def _check_journal_path(journal):
    """The journal's absolute path: a file, or a new name in an existing folder."""
    if not isinstance(journal, (str, os.PathLike)):
        raise TypeError(
            f"journal must be a file path (str or path-like), but got {journal!r} "
            f"(of type {type(journal).__name__})."
        )
    path = Path(journal).expanduser().resolve()
    if path.is_dir():
        raise IsADirectoryError(
            f"journal == {str(journal)!r} is a folder: give a file path, e.g. "
            f"{str(Path(journal) / 'search.jsonl')!r}."
        )
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"journal == {str(journal)!r}: its folder {str(path.parent)!r} does not exist. "
            f"Create it first, or give a path in an existing folder."
        )
    return path


def _task_key(record):
    return (record["round"], record["candidate"], record["split"])


class _Journal:
    """Append-only JSON lines: a header, then one result per line.

    Only an empty file, or a journal of the *same* search, is ever written
    to: anything else is refused before the file is opened for writing,
    whatever its last byte. Opening a journal of this search keeps its
    complete lines and cuts off a torn last line (a crash in the middle of a
    write), with a warning that says how many bytes went, so that the next
    record starts on a line of its own.
    """

    def __init__(self, path, header):
        self.path = _check_journal_path(path)
        self.records = []
        data = self.path.read_bytes() if self.path.exists() else b""
        complete = data[: data.rfind(b"\n") + 1]
        if data:
            # The first line decides, complete or not: a file of another
            # kind is refused whether or not it ends with a newline.
            first = data.split(b"\n", 1)[0]
            self._check_header(first, header)
            lines = complete.splitlines()
            self.records = [self._parse(line, n) for n, line in enumerate(lines[1:], 2)]
        if complete and len(complete) < len(data):
            warnings.warn(
                f"journal {str(self.path)!r}: removed a torn last line of "
                f"{len(data) - len(complete)} bytes (a write cut short); its task runs again.",
                UserWarning,
                stacklevel=4,
            )
            with open(self.path, "r+b") as file:
                file.truncate(len(complete))
        self._file = open(self.path, "a", encoding="utf-8")  # closed by close()
        if not complete:
            if data:  # the header of this very search, cut before its newline
                self._file.write("\n")
            else:
                self.append(header)

    def _check_header(self, line, header):
        try:
            found = json.loads(line)
        except ValueError:
            found = None
        if not isinstance(found, dict) or found.get("format") != JOURNAL_FORMAT:
            start = line[:80].decode("utf-8", "replace")
            raise ValueError(
                f"journal {str(self.path)!r} is not a search journal (its first line is "
                f"{start!r}): it was left unchanged. Give a new path, or an empty file."
            )
        if found.get("fingerprint") != header["fingerprint"]:
            raise ValueError(
                f"journal {str(self.path)!r} was written by another search: its "
                f"estimator, parameter space, splits or settings differ from this one's "
                f"(fingerprint {found.get('fingerprint', '?')[:12]}, this search "
                f"{header['fingerprint'][:12]}); it was left unchanged. Give a new journal "
                f"path, or delete the file yourself to start over."
            )

    def _parse(self, line, line_number):
        try:
            record = json.loads(line)
            _task_key(record)
        except (ValueError, KeyError, TypeError):
            raise ValueError(
                f"journal {str(self.path)!r} is corrupt: line {line_number} is not a "
                f"result ({line[:80]!r}). Only the last line may be torn."
            ) from None
        return record

    def append(self, record):
        self._file.write(json.dumps(record, sort_keys=True, default=_jsonable) + "\n")
        self._file.flush()

    def close(self):
        self._file.close()
