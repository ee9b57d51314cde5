"""Fair grading: the steps that keep nbgrader's rules from costing a right answer.

Verdicts are out of the student's reach by construction: the test cells run
in a checker kernel apart from the student's (:mod:`course_lib.grading.execute`).
What is left here, each used by one step of :mod:`course_lib.grading`:

* :func:`configure_nbgrader`, in every task's ``nbgrader_config.py``: the
  two-kernel executor in ``Execute``'s place, :class:`StderrAsNote`, which
  keeps a test cell's points when something printed warnings, and
  :class:`RestoreHiddenTests`, which gives an untouched test cell its hidden
  tests back without a false alarm in the log;
* :class:`FeedbackClearHiddenTests`, nbgrader's clearing for the feedback.

What a graded notebook hands back (its failures, the stderr notes, the feedback
without the hidden tests) is read in :mod:`course_lib.grading.handback`, without nbgrader.
"""

from __future__ import annotations

from nbgrader.api import MissingEntry
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor, OverwriteCells
from traitlets import List

from course_lib.grading.handback import STDERR_NOTE
from course_lib.grading.notebooks import nbgrader_meta

__all__ = [
    "FeedbackClearHiddenTests",
    "RestoreHiddenTests",
    "StderrAsNote",
    "configure_nbgrader",
]


# -- the graded run: nbgrader's configuration ------------------------------------


def configure_nbgrader(c):
    """Set a task's nbgrader config ``c``: two kernels, stderr of test cells as a note.

    Examples
    --------
    >>> from traitlets.config import Config
    >>> c = Config()
    >>> configure_nbgrader(c)
    >>> RestoreHiddenTests in c.Autograde.sanitize_preprocessors
    True
    """
    from course_lib.grading.execute import TwoKernelExecute, autograde_steps, use_two_kernels

    use_two_kernels(c)
    steps = list(c.Autograde.autograde_preprocessors)
    steps.insert(steps.index(TwoKernelExecute) + 1, StderrAsNote)
    c.Autograde.autograde_preprocessors = steps
    c.Autograde.sanitize_preprocessors = [
        RestoreHiddenTests if step is OverwriteCells else step
        for step in autograde_steps(c, "sanitize_preprocessors")
    ]


class RestoreHiddenTests(OverwriteCells):
    """nbgrader's ``OverwriteCells``, knowing that a released test cell lacks its hidden tests.

    nbgrader's ``generate_assignment`` saves a test cell in the gradebook with its
    hidden tests, and the checksum of that source, then releases the cell without
    them (jupyter/nbgrader#1961). So ``OverwriteCells`` found every untouched
    hidden-test cell changed, and the log of every untouched submission warned
    "Attribute 'checksum' for cell ... has changed!" once per such cell. Here a
    locked cell whose source is exactly the one released (the gradebook's source,
    its hidden tests cleared by nbgrader's own ``ClearHiddenTests``) gets the
    gradebook's source back before nbgrader compares: no warning. A cell changed in
    any other way is reported and overwritten as nbgrader always did.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        grade_id = nbgrader_meta(cell).get("grade_id")
        if grade_id is not None:
            try:
                source = self.gradebook.find_source_cell(
                    grade_id, self.notebook_id, self.assignment_id
                )
            except MissingEntry:  # nbgrader's own step says so
                source = None
            if source is not None and source.locked and cell.source == self.released(source):
                cell.source = source.source
        return super().preprocess_cell(cell, resources, cell_index)

    def released(self, source_cell):
        """The source of ``source_cell`` (a gradebook ``SourceCell``) as it was released."""
        import nbformat

        cell = nbformat.v4.new_code_cell(source_cell.source)
        # nbgrader's own clearing, with the course's delimiters (this step's config).
        ClearHiddenTests(parent=self)._remove_hidden_test_region(cell)
        return cell.source


class FeedbackClearHiddenTests(ClearHiddenTests):
    """nbgrader's ``ClearHiddenTests``, for the feedback, without a warning in every log.

    Feedback is an nbconvert HTML export, whose configuration sets
    ``NbConvertBase.display_data_priority``; nbgrader's preprocessors redefine that
    trait without making it configurable, so traitlets warned "Config option
    `display_data_priority` not recognized by `ClearHiddenTests`" for every
    submission. Here the trait is configurable again (as nbgrader's ``GetGrades``
    makes it); it changes nothing else.

    Examples
    --------
    >>> from traitlets.config import Config
    >>> c = Config({"NbConvertBase": {"display_data_priority": ["text/html"]}})
    >>> FeedbackClearHiddenTests(config=c).display_data_priority
    ['text/html']
    """

    display_data_priority = List(ClearHiddenTests.display_data_priority.default_value).tag(
        config=True
    )


class StderrAsNote(NbGraderPreprocessor):
    """Graded test cells: output on stderr becomes ordinary output under a note.

    nbgrader gives a test cell zero points for any output on stderr, so a
    correct answer whose code printed a warning lost its points. A failing
    test still fails: its assertion is an error output, not stderr.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and nbgrader_meta(cell).get("grade"):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
                    output["text"] = f"{STDERR_NOTE}\n{output.get('text', '')}"
        return cell, resources
