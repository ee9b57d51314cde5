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

With ``--slurm auto`` (the default; ``here`` uses the Slurm that
``SLURM_CONF`` names, ``off`` skips it), the same class is graded a third
time as a Slurm job array (``grade(on="slurm")``) on a throw-away single-node
Slurm on this host (:mod:`course_lib._throwaway_slurm`): E elements, each a grader that claims
notebook after notebook until none is left, and its rate is compared with the
E local jobs' (target: at least 0.9). Every run must give
the same grades. The overhead per notebook of a parallel run is what each of
its E slots spends per notebook beyond the notebook's own run.

Then the price of the checker kernel: each lesson's reference notebook is
executed, in the grading sandbox, by the course's two-kernel executor
(:class:`course_lib.grading.execute.TwoKernelExecute`: test cells in a
checker kernel, reaching the student's kernel over the channel) and by
nbgrader's plain ``Execute`` (one kernel: the same test cells, with the
handle in-process), alternately, ``--rounds`` times each. The last line, the
headline, is the ratio of their median times (target: at most 1.2).

    python bench/grading_throughput.py --students 4 --lessons 01_parallel_primer --jobs 2
    python bench/grading_throughput.py --kernels-only --root tests/fixtures/course \\
        --lessons 00_fixture
"""

import argparse
import collections
import os
import shutil
import statistics
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


def executor_seconds(executor_class, notebook, workspace, sandbox):
    """Seconds ``executor_class`` takes to execute ``notebook`` as autograde would."""
    from traitlets.config import Config

    from course_lib.grading import sandbox as sandboxing
    from course_lib.grading.runner import CHECKER_DIR, RUNTIME_DIR

    root = workspace.new_dir("bench")
    work = root / "autograded" / notebook.parent.name
    shutil.copytree(notebook.parent, work)
    config = Config()
    config.Execute.timeout = 600
    config.Execute.kernel_name = "python3"
    config.Execute.extra_arguments = ["--InteractiveShell.xmode=Minimal"]
    config.TwoKernelExecute.checker_runtime_dir = str(root / CHECKER_DIR)
    if sandbox:
        (root / RUNTIME_DIR).mkdir()
        config.KernelManager.transport = "ipc"
        config.KernelManager.connection_file = str(root / RUNTIME_DIR / "kernel.json")
        config.KernelManager.ip = str(root / RUNTIME_DIR / "kernel-ipc")
    env = workspace.env("bench", root)
    saved, cwd = dict(os.environ), os.getcwd()
    os.environ.update({k: env[k] for k in ("JUPYTER_PATH", sandboxing.SANDBOX_DIR_VAR)})
    os.chdir(work)
    try:
        nb = nbformat.read(work / notebook.name, 4)
        started = time.perf_counter()
        executor_class(config=config).preprocess(
            nb, {"metadata": {"path": str(work)}, "unique_key": notebook.stem}
        )
        return time.perf_counter() - started
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(saved)


def kernel_ratio(root, lessons, rounds, sandbox):
    """Median seconds per notebook: two kernels, one kernel; printed, and their ratio."""
    from nbgrader.preprocessors import Execute

    from course_lib.grading.execute import TwoKernelExecute
    from course_lib.grading.runner import Workspace

    workspace = Workspace(sandbox=sandbox)
    times = {"two kernels": [], "one kernel": []}
    try:
        notebooks = [
            p for lesson in lessons for p in sorted((root / "solutions" / lesson).glob("*.ipynb"))
        ]
        for _ in range(rounds):
            for path in notebooks:
                times["two kernels"].append(
                    executor_seconds(TwoKernelExecute, path, workspace, sandbox)
                )
                times["one kernel"].append(executor_seconds(Execute, path, workspace, sandbox))
    finally:
        workspace.kill_all()
        workspace.cleanup()
    two, one = (statistics.median(times[k]) for k in ("two kernels", "one kernel"))
    for name, values in times.items():
        print(
            f"{name}: median {statistics.median(values):.1f} s per notebook "
            f"({', '.join(f'{v:.1f}' for v in values)})"
        )
    return two / one


def make_class(folder, course_root, lessons, students):
    """``students`` folders: even ones hand in the references, odd ones the releases."""
    for index in range(students):
        kind = "solutions" if index % 2 == 0 else "lessons"
        for lesson in lessons:
            dest = Path(folder) / f"student{index:03d}" / lesson
            shutil.copytree(Path(course_root) / kind / lesson, dest)


def grade_class(course_root, submissions, lessons, jobs, sandbox, on="local", options=None):
    with tempfile.TemporaryDirectory(prefix="bench-course-") as folder:
        root = Path(folder)
        shutil.copytree(Path(course_root) / "solutions", root / "solutions")
        report = grading.grade(
            submissions,
            root,
            lessons=lessons,
            jobs=jobs,
            verbose=False,
            sandbox=sandbox,
            on=on,
            place_options=options,
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
    parser.add_argument("--rounds", type=int, default=2, help="runs of each executor")
    parser.add_argument(
        "--slurm",
        choices=("auto", "here", "off"),
        default="auto",
        help="grade the class as a Slurm job array too: on a throw-away Slurm (auto), "
        "on the one SLURM_CONF names (here), or not (off)",
    )
    parser.add_argument(
        "--kernels-only", action="store_true", help="only the two-kernel against one-kernel part"
    )
    args = parser.parse_args()
    sandbox = args.sandbox == "on"
    notebooks = args.students * len(args.lessons)
    if not args.kernels_only:
        throughput(args, sandbox, notebooks)
    ratio = kernel_ratio(Path(args.root).resolve(), args.lessons, args.rounds, sandbox)
    print(f"sandbox: {args.sandbox}; lessons: {', '.join(args.lessons)}; rounds: {args.rounds}")
    print(f"checker kernel: {ratio:.2f} x the one-kernel time per notebook (target <= 1.2)")


def throughput(args, sandbox, notebooks):
    """Grading a class with 1 job and with E jobs: rates, their ratio, overhead."""

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
        slurm = slurm_rate(args, sandbox, folder, notebooks, results[args.jobs][1])
    sequential_rate, sequential, sequential_grading = results[1]
    rate, _, parallel_grading = results[args.jobs]
    ratio = rate / sequential_rate
    overhead = sequential_grading / notebooks - per_notebook
    parallel_overhead = parallel_grading * args.jobs / notebooks - per_notebook
    print(f"sandbox: {args.sandbox}; students x lessons: {args.students} x {len(args.lessons)}")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        f"sequential: {sequential_rate:.1f} notebooks/min, overhead {overhead:.1f} s per notebook"
    )
    print(
        f"local: {rate:.1f} notebooks/min on {args.jobs} jobs, "
        f"overhead {parallel_overhead:.1f} s per notebook per job"
    )
    if slurm is not None:
        slurm_rate_value, slurm_grading = slurm
        slurm_overhead = slurm_grading * args.jobs / notebooks - per_notebook
        print(
            f"slurm: {slurm_rate_value:.1f} notebooks/min on {args.jobs} array tasks at once, "
            f"overhead {slurm_overhead:.1f} s per notebook per task, "
            f"{slurm_rate_value / rate:.2f} x local jobs (target >= 0.9)"
        )
    print(
        f"grading: {rate:.1f} notebooks/min on {args.jobs} jobs, {ratio:.2f} × sequential, "
        f"overhead {overhead:.1f} s per notebook"
    )


def _grades(report):
    return sorted((o.student, o.lesson, o.status, o.score) for o in report.outcomes)


def slurm_rate(args, sandbox, submissions, notebooks, local_report):
    """The class graded as a Slurm job array, E elements at once: (rate, grading seconds)."""
    if args.slurm == "off":
        return None
    import contextlib

    with contextlib.ExitStack() as stack:
        if args.slurm == "auto":
            from course_lib._throwaway_slurm import NODE_CPUS, ThrowawaySlurm, find_slurm

            ok, why = find_slurm()
            if not ok:
                print(f"slurm: skipped ({why})")
                return None
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-slurm-"))
            throwaway = stack.enter_context(ThrowawaySlurm(Path(folder) / "slurm"))
            stack.enter_context(_environment(throwaway.environment()))
            cpus = max(1, NODE_CPUS // args.jobs)  # E elements at once on the node
        else:
            cpus = 1
        shared = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-shared-"))
        from course_lib.grading.slurm import Slurm

        place = Slurm(shared=shared, cpus_per_task=cpus, elements=args.jobs)
        report = grade_class(args.root, submissions, args.lessons, None, sandbox, place)
    if _grades(report) != _grades(local_report):
        raise SystemExit(f"Slurm gave other grades: {_grades(report)} != {_grades(local_report)}")
    grading_seconds = report.seconds - report.prepare_seconds
    rate = 60 * notebooks / report.seconds
    print(
        f"slurm array: {notebooks} notebooks in {report.seconds:.1f} s (preparing the lessons "
        f"{report.prepare_seconds:.1f} s, grading {grading_seconds:.1f} s): "
        f"{rate:.1f} notebooks/min; merging fragments {place.merge_seconds / notebooks:.2f} s "
        "per notebook (serial, on the instructor's side)"
    )
    per_element = collections.Counter(element for _, element in place.claims)
    print(
        f"slurm elements: {len(per_element)} (E = {args.jobs}), notebooks each "
        f"{sorted(per_element.values(), reverse=True)}; claims {len(place.claims)}"
    )
    return rate, grading_seconds


def _environment(values):
    """Set environment variables for a block (the Slurm clients' SLURM_CONF)."""
    import contextlib

    @contextlib.contextmanager
    def scope():
        saved = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    return scope()


if __name__ == "__main__":
    main()
