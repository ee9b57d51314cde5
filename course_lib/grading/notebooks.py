"""Small readers of notebooks and their nbgrader metadata, shared by the steps."""

from __future__ import annotations

from pathlib import Path

__all__ = ["grade_id", "nbgrader_meta", "output_text", "read_notebook"]


def read_notebook(path):
    """The notebook at ``path`` (nbformat 4)."""
    import nbformat

    return nbformat.read(str(Path(path)), as_version=4)


def nbgrader_meta(cell):
    """A cell's nbgrader metadata (empty dict when it has none)."""
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def grade_id(cell):
    """A cell's nbgrader ``grade_id``, or None."""
    return nbgrader_meta(cell).get("grade_id")


def output_text(output):
    """The text a reader sees in one cell output: streams, data, tracebacks.

    Examples
    --------
    >>> output_text({"output_type": "stream", "name": "stdout", "text": "hi"})
    'hi'
    """
    parts = []
    if "text" in output:
        parts.append(output["text"])
    for value in output.get("data", {}).values():
        if isinstance(value, str):
            parts.append(value)
    parts.extend(output.get("traceback", []))
    if "evalue" in output:
        parts.append(str(output["evalue"]))
    return "\n".join(parts)
