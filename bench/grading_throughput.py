"""Grading a class: notebooks per minute with 1 job and with E jobs, overhead per notebook.

A class of S students x L lessons (students alternate between handing in the
lesson's reference and its untouched release) is graded twice in one run by
``course_lib.grading.grade``: with ``jobs=1`` (one submission after the
other, what nbgrader does) and with ``jobs=E``. Each lesson's reference is
also executed once with nbclient, alone, to measure the notebook's own run
time: the overhead per notebook is what sequential grading costs beyond it
(process starts, nbgrader's imports, the sandbox, the gradebook merge).
Preparing the lessons (their release, the template gradebook) is a fixed
cost per run, reported apart.

    python bench/grading_throughput.py --students 4 --lessons 01_parallel_primer --jobs 2
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from course_lib import grading


def execution_seconds(lesson_dir):
    """Seconds nbclient takes to run the lesson's notebooks, in a copy of its folder."""
    with tempfile.TemporaryDirectory(prefix="bench-exec-") as folder:
        work = Path(folder) / lesson_dir.name
        shutil.copytree(lesson_dir, work)
        started = time.perf_counter()
        for path in sorted(work.glob("*.ipynb")):
            nb = nbformat.read(path, 4)
            NotebookClient(
                nb,
                timeout=600,
                kernel_name="python3",
                allow_errors=True,
                resources={"metadata": {"path": str(work)}},
            ).execute()
        return time.perf_counter() - started


def make_class(folder, course_root, lessons, students):
    """``students`` folders: even ones hand in the references, odd ones the releases."""
    for index in range(students):
        kind = "solutions" if index % 2 == 0 else "lessons"
        for lesson in lessons:
            dest = Path(folder) / f"student{index:03d}" / lesson
            shutil.copytree(Path(course_root) / kind / lesson, dest)


def grade_class(course_root, submissions, lessons, jobs, sandbox):
    with tempfile.TemporaryDirectory(prefix="bench-course-") as folder:
        root = Path(folder)
        shutil.copytree(Path(course_root) / "solutions", root / "solutions")
        report = grading.grade(
            submissions, root, lessons=lessons, jobs=jobs, verbose=False, sandbox=sandbox
        )
    if not report.ok:
        raise SystemExit(f"grading failed: {report.problems}")
    errors = [o for o in report.outcomes if o.status != "graded"]
    if errors:
        raise SystemExit(f"not graded: {[(o.student, o.lesson, o.message) for o in errors]}")
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=4)
    parser.add_argument("--lessons", nargs="+", default=["01_parallel_primer"])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--sandbox", choices=("on", "off"), default="on")
    parser.add_argument("--root", default=str(grading.REPO_ROOT))
    args = parser.parse_args()
    sandbox = args.sandbox == "on"
    notebooks = args.students * len(args.lessons)

    run_time = {
        lesson: execution_seconds(Path(args.root) / "solutions" / lesson) for lesson in args.lessons
    }
    per_notebook = sum(run_time.values()) / len(run_time)
    print(f"nbclient alone: {per_notebook:.1f} s per reference notebook {run_time}")

    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-class-") as folder:
        make_class(folder, args.root, args.lessons, args.students)
        for jobs in (1, args.jobs):
            report = grade_class(args.root, folder, args.lessons, jobs, sandbox)
            grading_seconds = report.seconds - report.prepare_seconds
            rate = 60 * notebooks / report.seconds
            results[jobs] = (rate, report, grading_seconds)
            print(
                f"jobs={jobs}: {notebooks} notebooks in {report.seconds:.1f} s "
                f"(preparing the lessons {report.prepare_seconds:.1f} s, grading "
                f"{grading_seconds:.1f} s): {rate:.1f} notebooks/min"
            )
    sequential_rate, sequential, sequential_grading = results[1]
    rate, _, _ = results[args.jobs]
    ratio = rate / sequential_rate
    overhead = sequential_grading / notebooks - per_notebook
    print(f"sandbox: {args.sandbox}; students x lessons: {args.students} x {len(args.lessons)}")
    print(
        f"grading: {rate:.1f} notebooks/min on {args.jobs} jobs, {ratio:.2f} × sequential, "
        f"overhead {overhead:.1f} s per notebook"
    )


if __name__ == "__main__":
    main()
