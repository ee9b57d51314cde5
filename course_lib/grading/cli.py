"""The command line: ``python -m course_lib.grading <command>``, one per Makefile target."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from course_lib.grading.autograde import grade
from course_lib.grading.config import course_config
from course_lib.grading.layout import check_course_root
from course_lib.grading.placement import PLACES
from course_lib.grading.releases import check_release, release
from course_lib.grading.report import GradeReport, class_outcomes, write_csv, write_lms_csv
from course_lib.grading.runner import TASK_TIMEOUT
from course_lib.grading.sandbox import describe_host
from course_lib.grading.similarity import THRESHOLD, similarity_report
from course_lib.grading.verify import verify_exercises

__all__ = ["main"]


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    """``python -m course_lib.grading <command>``: see ``--help``."""
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.grading",
        description="The course's grading pipeline: release, check the release, grade, verify.",
    )
    parser.add_argument(
        "--root",
        default=".",
        help="course root: solutions/, lessons/ and, read on top of the course's settings, "
        "its own nbgrader_config.py (default: the current folder, as for nbgrader)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("release", "regenerate lessons/ from solutions/"),
        ("check-release", "fail when lessons/ is not what release writes"),
        ("grade", "autograde a folder of submissions"),
        ("verify-exercises", "grade solutions and blank releases, check both"),
        ("check-sandbox", "say whether this host can sandbox the students' code"),
        ("report", "the class's grades from the gradebook (hand grades too): table, grades.csv"),
        ("similarity", "near-identical answers per exercise: similarity.csv and .html"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        if name in ("check-sandbox", "report"):
            if name == "report":
                sub.add_argument("--csv", help="default: <root>/grades.csv")
            continue
        sub.add_argument("--lessons", nargs="+", help="only these lessons")
        if name in ("grade", "verify-exercises"):
            sub.add_argument(
                "--jobs",
                type=int,
                help="tasks at once (default: CPUs, memory); on slurm: array elements",
            )
            sub.add_argument("--timeout", type=float, help="seconds per cell (default: config)")
            sub.add_argument(
                "--sandbox",
                choices=("on", "off"),
                default="on",
                help="run each notebook in a bubblewrap sandbox (default: on); with off, "
                "every row says it was graded without a sandbox",
            )
        if name == "release":
            sub.add_argument(
                "--prune",
                action="store_true",
                help="also delete lessons/<lesson> folders whose solutions/<lesson> is gone "
                "(without it, release refuses to run while there are any)",
            )
        if name == "similarity":
            sub.add_argument("submissions", help="folder of <student>/<lesson>/*.ipynb")
            sub.add_argument(
                "--threshold",
                type=float,
                default=THRESHOLD,
                help=f"share of both answers that must match (default: {THRESHOLD})",
            )
            sub.add_argument("--out", help="folder of the report (default: <root>)")
            continue
        if name == "grade":
            sub.add_argument("submissions", help="folder of <student>/<lesson>/*.ipynb")
            sub.add_argument("--task-timeout", type=float, default=TASK_TIMEOUT)
            sub.add_argument("--csv", help="default: <root>/grades.csv")
            sub.add_argument(
                "--on",
                choices=sorted(PLACES),
                default="local",
                help="where tasks run: this host, or one Slurm job array (default: local)",
            )
            for option, text in (
                ("--shared", "slurm: a folder this host and the nodes see"),
                ("--partition", "slurm: the partition (default: config, then Slurm's)"),
                ("--account", "slurm: the account to charge"),
                ("--time", "slurm: each element's time limit (sbatch --time)"),
                ("--mem", "slurm: each element's memory (sbatch --mem)"),
            ):
                sub.add_argument(option, help=text)
    args = parser.parse_args(argv)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if args.command == "check-sandbox":
            lines = describe_host()
            print("\n".join(lines))
            return 0 if lines[-1] == "sandbox: ok" else 1
        check_course_root(args.root, "--root")
        if args.command == "report":
            return _report(Path(args.root), args.csv)
        if args.command == "similarity":
            return _similarity(args)
        if args.command == "release":
            release(args.root, args.lessons, prune=args.prune)
            return 0
        if args.command == "check-release":
            problems = check_release(args.root, args.lessons)
            for problem in problems:
                print(problem)
            print("lessons/ is up to date" if not problems else "run `make release` and commit")
            return 1 if problems else 0
        if args.command == "grade":
            report = grade(
                args.submissions,
                args.root,
                lessons=args.lessons,
                jobs=args.jobs,
                timeout=args.timeout,
                task_timeout=args.task_timeout,
                csv_path=args.csv,
                sandbox=args.sandbox == "on",
                on=args.on,
                place_options=_place_options(args),
            )
            return 0 if report.ok else 1
        report = verify_exercises(
            args.root,
            args.lessons,
            jobs=args.jobs,
            timeout=args.timeout,
            sandbox=args.sandbox == "on",
        )
        return 0 if report.ok else 1
    except (ValueError, FileNotFoundError, NotADirectoryError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _report(root, csv_path):
    """``report``: grades.csv and the table, from the gradebook (hand grades included)."""
    csv_path = Path(csv_path) if csv_path else root / "grades.csv"
    gradebook = root / ".nbgrader" / "gradebook.db"
    if not gradebook.is_file():
        raise FileNotFoundError(f"{gradebook} does not exist: grade first (make grade)")
    course_id = course_config(root).CourseDirectory.get("course_id", "")
    outcomes = class_outcomes(
        [], csv_path, gradebook, course_id if isinstance(course_id, str) else ""
    )
    write_csv(csv_path, outcomes)
    lms = csv_path.with_name("grades-lms.csv")
    write_lms_csv(lms, outcomes)
    print(GradeReport(outcomes, [], csv_path, "").table())
    print(f"\n{len(outcomes)} row(s) written to {csv_path}; for an LMS (Moodle, Canvas): {lms}")
    return 0


def _similarity(args):
    """``similarity``: the class similarity report, a CSV and an HTML page."""
    report = similarity_report(
        args.submissions, args.root, lessons=args.lessons, threshold=args.threshold
    )
    out = Path(args.out) if args.out else Path(args.root)
    report.write_csv(out / "similarity.csv")
    report.write_html(out / "similarity.html")
    for match in report.matches:
        print(
            f"{match.lesson}/{match.cell}: {match.first} and {match.second} "
            f"({match.first_share:.0%}, {match.second_share:.0%})"
        )
    print(
        f"{len(report.matches)} near-identical answer(s) among {report.answers}: "
        f"{out / 'similarity.csv'}, {out / 'similarity.html'} (no score changed)"
    )
    return 0


def _place_options(args):
    """The command line's settings of the place tasks run on (none for local)."""
    if args.on == "local":
        return {}
    names = ("shared", "partition", "account", "time", "mem")
    options = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    if args.jobs is not None:  # on Slurm: array elements, each grading item after item
        options["elements"] = args.jobs
    return options
