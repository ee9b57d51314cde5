"""A student's memory: a lesson run with its cluster, kernel and JupyterLab, on one CPU.

Starts JupyterLab as ``make lab`` does, executes each lesson's solution notebook in a
fresh kernel (nbclient) and samples, every 0.2 s, the PSS of every process of the
student's session: JupyterLab, the kernel and all it started (controller, engines).
PSS counts shared pages once, split between sharers: the figure a cgroup limit such
as mybinder.org's 2 GB sees. The bench pins itself and its children to one CPU, as
Binder gives about one. The last line is the worst lesson's peak against the 1.5 GB
budget.

    python bench/footprint.py [--lessons 01_parallel_primer 04_model_selection]
"""

import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from course_lib import _processes
from course_lib.lab import free_port, start_course_lab
from course_lib.memory import MemoryMonitor, tree_memory

REPO = Path(__file__).resolve().parent.parent
BUDGET_MB = 1536


def start_lab(work_dir):
    """JupyterLab as ``make lab`` starts it; the student's working copy in ``work_dir``."""
    return start_course_lab(
        REPO, port=free_port(), token="footprint", work_dir=work_dir, stdout=subprocess.DEVNULL
    )


def stop_lab(lab):
    """Stop JupyterLab and everything it started, by PID."""
    left = _processes.stop(_processes.process_tree(lab.pid), grace=20)
    lab.wait(timeout=5)
    if left:
        print(f"still alive after SIGKILL: {[p.pid for p in left]}")


def run_lesson(lesson, lab):
    """Execute one solution notebook; the peak PSS of JupyterLab and the kernel's tree."""
    notebook = nbformat.read(REPO / "solutions" / lesson / f"{lesson}.ipynb", as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=False)

    def session():
        kernel = getattr(client, "km", None)
        roots = [lab.pid]
        if kernel is not None and kernel.has_kernel:
            roots.append(kernel.provisioner.process.pid)
        return roots

    start = time.perf_counter()
    with MemoryMonitor(interval=0.2, measure="pss", processes=session) as monitor:
        client.execute(cwd=str(REPO / "solutions" / lesson))
    return monitor.peak_mb["processes"], time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    lessons = sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())
    parser.add_argument("--lessons", nargs="+", default=lessons)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    scratch = tempfile.TemporaryDirectory(prefix="footprint-")
    lab = start_lab(Path(scratch.name) / "my_work")
    try:
        idle = tree_memory([lab.pid], "pss")
        print(f"JupyterLab alone: {idle:.0f} MiB PSS; one CPU: {sorted(os.sched_getaffinity(0))}")
        print(f"{'lesson':<22}{'peak PSS (MiB)':>16}{'seconds':>10}")
        worst = ("", 0.0)
        for lesson in args.lessons:
            peak, seconds = run_lesson(lesson, lab)
            print(f"{lesson:<22}{peak:>16.0f}{seconds:>10.1f}")
            worst = max(worst, (lesson, peak), key=lambda item: item[1])
    finally:
        stop_lab(lab)
        scratch.cleanup()
    print(
        f"peak footprint = {worst[1] / 1024:.2f} GB PSS ({worst[0]}), "
        f"budget {BUDGET_MB / 1024:.1f} GB, 2 engines, 1 CPU"
    )


if __name__ == "__main__":
    main()
