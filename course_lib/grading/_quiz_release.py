"""Release quiz cells without nbgrader's raising stub.

nbgrader replaces every solution region with ``raise NotImplementedError()``:
right for an exercise, but an unanswered pop quiz would then show a traceback
instead of :func:`course_lib.quiz.check`'s one line ("Replace ... with your
answer"). In quiz cells (``grade_id`` starting with ``quiz-``) the region is
removed instead; the cell's ``answer = ...`` line stays, above the check.

``nbgrader_config.py`` installs it with :func:`use_quiz_stubs`.

Examples
--------
>>> from traitlets.config import Config
>>> c = Config()
>>> use_quiz_stubs(c)
>>> ClearQuizSolutions in c.GenerateAssignment.preprocessors
True
"""

from nbgrader.converters import GenerateAssignment
from nbgrader.preprocessors import ClearSolutions

from course_lib.grading.notebooks import grade_id as grade_id_of

QUIZ_PREFIX = "quiz-"

_DROP = "\x00course_lib: no stub in a quiz cell\x00"


class ClearQuizSolutions(ClearSolutions):
    """nbgrader's ClearSolutions, except that quiz cells get no stub."""

    def _replace_solution_region(self, cell, language):
        grade_id = grade_id_of(cell) or ""
        if cell.cell_type != "code" or not grade_id.startswith(QUIZ_PREFIX):
            return super()._replace_solution_region(cell, language)
        stubs = self.code_stub
        self.code_stub = {**stubs, language: _DROP}
        try:
            replaced = super()._replace_solution_region(cell, language)
        finally:
            self.code_stub = stubs
        cell.source = "\n".join(
            line for line in cell.source.split("\n") if line.strip() != _DROP.strip()
        )
        return replaced


def use_quiz_stubs(config):
    """Make ``nbgrader generate_assignment`` use :class:`ClearQuizSolutions`.

    Parameters
    ----------
    config : traitlets.config.Config
        The ``c`` of ``nbgrader_config.py``.
    """
    default = GenerateAssignment.class_traits()["preprocessors"].default()
    config.GenerateAssignment.preprocessors = [
        ClearQuizSolutions if step is ClearSolutions else step for step in default
    ]
