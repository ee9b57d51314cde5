"""release and check-release on a copy of the fixture course."""

import nbformat
import pytest
from grading_helpers import FIXTURES, LESSON, NOTEBOOK, cell, copy_course

from course_lib import grading

pytestmark = [pytest.mark.timeout(600)]


def test_check_release_finds_drift_and_release_repairs_it(tmp_path):
    copy_course(tmp_path)
    released = tmp_path / "lessons" / LESSON / NOTEBOOK
    nb = nbformat.read(released, 4)
    cell(
        nb, "ex-squares"
    ).source += "\n    return view.map_sync(lambda value: value * value, values)"
    nbformat.write(nb, released)
    (tmp_path / "lessons" / "99_gone").mkdir()
    problems = "\n".join(grading.check_release(tmp_path))
    assert f"lessons/{LESSON}/{NOTEBOOK} differs" in problems
    assert "contains solution code: 'return view.map_sync(lambda value: value * value" in problems
    assert "lessons/99_gone has no source" in problems

    # A release whose source is gone is deleted only when asked for.
    with pytest.raises(ValueError, match="lessons/99_gone .*--prune"):
        grading.release(tmp_path, verbose=False)
    assert (tmp_path / "lessons" / "99_gone").is_dir()
    assert "value * value" in released.read_text()  # nothing was changed
    assert grading.release(tmp_path, prune=True, verbose=False) == [LESSON, "99_gone"]
    committed = FIXTURES / "course" / "lessons" / LESSON / NOTEBOOK
    assert released.read_bytes() == committed.read_bytes()
    assert not (tmp_path / "lessons" / "99_gone").exists()
