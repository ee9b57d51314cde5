"""nbgrader's configuration of a course: the course's settings, then the root's own file.

Every course root gets the settings grading relies on (:func:`configure_course`),
whether or not it has an ``nbgrader_config.py``; when it has one, that file is read
on top (:func:`course_config`), so that an instructor's course folder on a hub, with
its own ``course_id`` and exchange, grades with its own settings. Nothing here reads
the repository: an installed ``course_lib`` (not editable) grades any ``--root``.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CONFIG_NAME", "config_file", "configure_course", "course_config"]

#: The file nbgrader reads in a course root.
CONFIG_NAME = "nbgrader_config.py"


def configure_course(c, root, *, make_folder=True):
    """Write the course's nbgrader settings for the course root ``root`` into ``c``.

    Parameters
    ----------
    c : traitlets.config.Config
        The ``c`` of an ``nbgrader_config.py``.
    root : str or Path or None
        The course root: ``solutions/`` (source), ``lessons/`` (release), the
        gradebook in ``.nbgrader/gradebook.db``; None sets no root and no gradebook
        (the caller does).
    make_folder : bool
        Make ``.nbgrader/`` when missing (nbgrader's own commands need it; grading,
        which puts its gradebooks where it chooses, does not).

    Examples
    --------
    >>> import tempfile
    >>> from traitlets.config import Config
    >>> c = Config()
    >>> configure_course(c, tempfile.mkdtemp(), make_folder=False)
    >>> c.Execute.timeout, c.CourseDirectory.source_directory
    (300, 'solutions')
    """
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
    from nbgrader.preprocessors import GetGrades

    from course_lib.grading._quiz_release import use_quiz_stubs
    from course_lib.grading.integrity import FeedbackClearHiddenTests

    # solutions/NN_topic/ is the single source; lessons/NN_topic/ the student release.
    c.CourseDirectory.source_directory = "solutions"
    c.CourseDirectory.release_directory = "lessons"
    if root is not None:
        root = Path(root).resolve()
        c.CourseDirectory.root = str(root)
        # The gradebook (students' grades) lives in a git-ignored folder.
        if make_folder:
            (root / ".nbgrader").mkdir(exist_ok=True)
        c.CourseDirectory.db_url = f"sqlite:///{root / '.nbgrader' / 'gradebook.db'}"
    # Seconds per cell when grading. nbgrader's default, 30 s, stops cluster start-up
    # on a busy host and any real search. In nbgrader 0.9 this key is
    # `Execute.timeout`; `ExecutePreprocessor.timeout` is ignored by autograde.
    c.Execute.timeout = 300
    # The kernel that grades: Python 3 of the course's environment, started with
    # minimal tracebacks, so that a failing hidden test shows its error
    # ("AssertionError") and not its source lines in outputs and feedback.
    c.Execute.kernel_name = "python3"
    # `make grade` puts course_lib.grading.execute in Execute's place: these settings
    # then apply to both its kernels, the student's and the checker that runs the tests.
    c.Execute.extra_arguments = ["--InteractiveShell.xmode=Minimal"]
    # Feedback never shows hidden tests (nbgrader's default feedback does).
    c.GenerateFeedback.preprocessors = [
        GetGrades,
        CSSHTMLHeaderPreprocessor,
        FeedbackClearHiddenTests,
    ]
    # Released quiz cells keep their `answer = ...` line instead of nbgrader's
    # `raise NotImplementedError()`: an unanswered quiz prints one line, no traceback.
    use_quiz_stubs(c)


def config_file(root):
    """The course root's own ``nbgrader_config.py``, or None when it has none.

    Examples
    --------
    >>> import tempfile
    >>> config_file(tempfile.mkdtemp()) is None
    True
    """
    path = Path(root) / CONFIG_NAME
    return path if path.is_file() else None


def course_config(root):
    """The configuration nbgrader grades ``root`` with: the course's, then the root's file.

    ``root`` None (grading no lesson at all): the course's settings alone.

    Returns
    -------
    traitlets.config.Config

    Examples
    --------
    >>> import tempfile
    >>> root = Path(tempfile.mkdtemp())
    >>> _ = (root / "nbgrader_config.py").write_text("get_config().Execute.timeout = 60")
    >>> c = course_config(root)
    >>> c.Execute.timeout, c.Execute.kernel_name
    (60, 'python3')
    """
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    c = Config()
    configure_course(c, root, make_folder=False)
    own = None if root is None else config_file(root)
    if own is not None:
        c.merge(PyFileConfigLoader(own.name, path=str(own.parent)).load_config())
    return c
