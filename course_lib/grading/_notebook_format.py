"""Store notebooks in the form JupyterLab writes, so that opening one changes nothing.

When a notebook's kernel starts, JupyterLab replaces the notebook's
``metadata.language_info`` with what the kernel reports (name, version, MIME
type, CodeMirror mode, lexer, exporter, file extension). A notebook stored with
less (``{"name": "python"}``, as nbgrader and hand-written JSON leave it) is
therefore modified (●) as soon as it opens, and autosave rewrites it. Stored
with the kernel's ``language_info`` and in nbformat's JSON layout (what the
Jupyter server writes), it opens unmodified.

The version in ``language_info`` is the Python version of the kernel: it can
only match the environment the notebooks were normalised in. :func:`problems`
therefore ignores it, and :func:`normalise_file` writes this environment's.

Run ``python -m course_lib.grading._notebook_format [--check] PATH...`` (files or
folders): without ``--check`` it rewrites the notebooks that differ; with it, it
lists them and exits 1 if any.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

__all__ = ["kernel_language_info", "normalise", "normalise_file", "problems"]


def kernel_language_info(version=None):
    """``language_info`` as ipykernel's Python kernel reports it.

    Parameters
    ----------
    version : str, optional
        Default: this interpreter's version, such as ``"3.11.7"``.

    Examples
    --------
    >>> kernel_language_info("3.11.7")["pygments_lexer"]
    'ipython3'
    """
    if version is None:
        version = sys.version.split()[0]
    return {
        "codemirror_mode": {"name": "ipython", "version": 3},
        "file_extension": ".py",
        "mimetype": "text/x-python",
        "name": "python",
        "nbconvert_exporter": "python",
        "pygments_lexer": "ipython3",
        "version": version,
    }


def _check_notebook(nb):
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise TypeError(f"nb must be a notebook (a dict with 'cells'), but got {type(nb)}.")
    return nb


def normalise(nb, version=None):
    """A copy of the notebook ``nb`` (a dict) with the kernel's ``language_info``.

    A notebook whose ``language_info`` names another language is left as is.

    Examples
    --------
    >>> nb = {"cells": [], "metadata": {"language_info": {"name": "python"}}}
    >>> normalise(nb, "3.11.7")["metadata"]["language_info"]["mimetype"]
    'text/x-python'
    """
    nb = copy.deepcopy(_check_notebook(nb))
    metadata = nb.setdefault("metadata", {})
    if metadata.get("language_info", {}).get("name", "python") == "python":
        metadata["language_info"] = kernel_language_info(version)
    return nb


def _text(nb):
    """The file's text as the Jupyter server writes it (nbformat's JSON writer)."""
    import nbformat

    return nbformat.writes(nbformat.from_dict(nb), version=nbformat.NO_CONVERT) + "\n"


def normalise_file(path, version=None):
    """Rewrite the notebook at ``path`` in JupyterLab's form; True if it changed."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    wanted = _text(normalise(json.loads(text), version))
    if wanted == text:
        return False
    path.write_text(wanted, encoding="utf-8")
    return True


def problems(paths):
    """The notebooks under ``paths`` that JupyterLab would rewrite on opening.

    The Python version in ``language_info`` is not compared (see the module's
    docstring). Returns one line per notebook.
    """
    found = []
    for path in _notebooks(paths):
        text = path.read_text(encoding="utf-8")
        stored = json.loads(text)
        version = stored.get("metadata", {}).get("language_info", {}).get("version")
        if _text(normalise(stored, version or "")) != text:
            found.append(
                f"{path}: not in the form JupyterLab writes (it would show as modified on "
                "opening); run `python -m course_lib.grading._notebook_format` on it"
            )
    return found


def _notebooks(paths):
    for path in map(Path, paths):
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
            )
        elif path.suffix == ".ipynb":
            yield path
        else:
            raise ValueError(f"paths must be notebooks or folders, but got {str(path)!r}.")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="list, do not rewrite")
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args(argv)
    if args.check:
        found = problems(args.paths)
        print("\n".join(found) or "every notebook is in JupyterLab's form")
        return 1 if found else 0
    for path in _notebooks(args.paths):
        if normalise_file(path):
            print(f"rewritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
