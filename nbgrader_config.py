"""nbgrader configuration of the course (completed by the grading pipeline)."""

c = get_config()  # noqa: F821

c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "lessons"
