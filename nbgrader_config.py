"""nbgrader configuration of the course.

nbgrader reads this file from the current directory: run ``make release``,
``make grade`` and the formgrader of ``make lab`` from the repository root.
``course_lib.grading`` loads it in every temporary course root it grades in
(``load_subconfig``) and only changes the root and the gradebook there.
``tests/test_grading.py`` checks every setting below with real nbgrader runs.
"""

from pathlib import Path

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

c = get_config()  # noqa: F821

COURSE_ROOT = Path(__file__).resolve().parent

# solutions/NN_topic/ is the single source; lessons/NN_topic/ the student release.
c.CourseDirectory.root = str(COURSE_ROOT)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "lessons"

# The gradebook (students' grades) lives in a git-ignored folder.
(COURSE_ROOT / ".nbgrader").mkdir(exist_ok=True)
c.CourseDirectory.db_url = f"sqlite:///{COURSE_ROOT / '.nbgrader' / 'gradebook.db'}"

# Seconds per cell when grading. nbgrader's default, 30 s, stops cluster start-up
# on a busy host and any real search. In nbgrader 0.9 this key is
# `Execute.timeout`; `ExecutePreprocessor.timeout` is ignored by autograde.
c.Execute.timeout = 300

# The kernel that grades: Python 3 of the course's environment, started with
# minimal tracebacks, so that a failing hidden test shows its error
# ("AssertionError") and not its source lines in outputs and feedback.
# `make grade` puts course_lib.grading.execute in Execute's place: these settings
# then apply to both its kernels, the student's and the checker that runs the tests.
c.Execute.kernel_name = "python3"
c.Execute.extra_arguments = ["--InteractiveShell.xmode=Minimal"]

# Feedback never shows hidden tests (nbgrader's default feedback does).
c.GenerateFeedback.preprocessors = [GetGrades, CSSHTMLHeaderPreprocessor, ClearHiddenTests]

# Released quiz cells keep their `answer = ...` line instead of nbgrader's
# `raise NotImplementedError()`: an unanswered quiz prints one line, no traceback.
from course_lib.grading._quiz_release import use_quiz_stubs  # noqa: E402

use_quiz_stubs(c)
