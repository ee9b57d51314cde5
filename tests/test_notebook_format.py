"""course_lib.grading._notebook_format: notebooks stored as JupyterLab writes them."""

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from course_lib.grading import _notebook_format as notebook_format


def _write(path, language_info):
    nb = new_notebook(cells=[new_code_cell("print('é')")])
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "py"}
    nb.metadata["language_info"] = language_info
    path.write_text(json.dumps(nb, indent=2))  # not the server's layout either
    return path


def test_language_info_is_what_the_python_kernel_reports():
    from ipykernel.ipkernel import IPythonKernel

    assert notebook_format.kernel_language_info() == IPythonKernel.language_info


def test_normalise_file_writes_the_servers_form_once(tmp_path):
    path = _write(tmp_path / "lesson.ipynb", {"name": "python"})
    assert notebook_format.problems([tmp_path]) == [
        f"{path}: not in the form JupyterLab writes (it would show as modified on opening); "
        "run `python -m course_lib.grading._notebook_format` on it"
    ]
    assert notebook_format.normalise_file(path) is True
    text = path.read_text()
    # What the Jupyter server would write when saving it.
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    assert nbformat.writes(nb, version=nbformat.NO_CONVERT) + "\n" == text
    assert nb.metadata.language_info == notebook_format.kernel_language_info()
    assert nb.cells[0].source == "print('é')"
    assert notebook_format.normalise_file(path) is False
    assert path.read_text() == text
    assert notebook_format.problems([path]) == []
    assert notebook_format.main(["--check", str(tmp_path)]) == 0


def test_problems_ignore_the_python_version_only(tmp_path):
    path = _write(tmp_path / "lesson.ipynb", {"name": "python"})
    notebook_format.normalise_file(path, version="3.10.1")
    assert notebook_format.problems([path]) == []
    nb = json.loads(path.read_text())
    nb["metadata"]["language_info"]["mimetype"] = "text/plain"
    path.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    assert len(notebook_format.problems([path])) == 1
    assert notebook_format.main(["--check", str(path)]) == 1


def test_bad_paths_and_notebooks_are_refused(tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("not a notebook")
    with pytest.raises(ValueError, match="notes.txt"):
        notebook_format.problems([other])
    with pytest.raises(TypeError, match="notebook"):
        notebook_format.normalise(["cells"])
    assert other.read_text() == "not a notebook"
