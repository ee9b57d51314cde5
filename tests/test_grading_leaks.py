"""What a release must not contain, found line by line."""

import json

import nbformat
from grading_helpers import FIXTURES, LESSON, NOTEBOOK, cell

from course_lib import grading


def test_release_leaks_finds_solutions_hidden_tests_and_outputs():
    solution = nbformat.read(FIXTURES / "course" / "solutions" / LESSON / NOTEBOOK, 4)
    released = nbformat.read(FIXTURES / "course" / "lessons" / LESSON / NOTEBOOK, 4)
    assert grading.release_leaks(solution, released) == []
    assert "return client[:].apply_async(os.getpid).get_dict()" in grading.solution_lines(solution)
    leaky = nbformat.from_dict(json.loads(json.dumps(released)))
    hidden = 'started = {process["pid"] for process in student.processes()}'
    cell(leaky, "test-pids").source += "\n    " + hidden
    cell(leaky, "ex-pids").source += "\n    ### BEGIN SOLUTION"
    cell(leaky, "setup").outputs = [nbformat.v4.new_output("stream", text="2\n")]
    problems = "\n".join(grading.release_leaks(solution, leaky))
    assert f"contains a hidden test: {hidden!r}" in problems
    assert "contains the marker 'BEGIN SOLUTION'" in problems
    assert "has stored outputs" in problems
