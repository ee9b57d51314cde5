"""The live cluster view's cost: a search watched by it against the same search unwatched.

Everything runs in a real Jupyter kernel (ipykernel, started with jupyter_client), as in
a lesson: the kernel starts a 2-engine ``local_cluster``, persists 5 splits of the digits
data, then runs the same ``course_lib.search`` grid (SVC, C x gamma, 5 splits) again and
again, alternately plain and inside ``with watch(client):``, so that both see the same
machine load. The view's widgets send their updates over the kernel's IOPub channel as
in a notebook (no browser listens here, the kernel serialises and sends them anyway).

Printed: each pair's times, the median ratio watched/plain, the kernel's CPU seconds
per wall second with and without the view, the view's memory in the kernel (USS growth
when it is imported, and after the watched runs), and the bytes each update sends. The
last line is the headline: the watched search must be at most 5% slower (DESIGN.md).

    python bench/dashboard.py [--pairs 5] [--interval 0.5]
"""

import argparse
import json
import statistics

from jupyter_client.manager import start_new_kernel

SETUP = """
import json, os, tempfile, time
os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC
from course_lib.cluster import local_cluster
from course_lib.memory import process_memory
from course_lib.search import launch_search
from course_lib.splits import persist_cv_splits

cluster = local_cluster(2)
client = cluster.start()
lview = client.load_balanced_view()
client[:].execute("import sklearn.svm, course_lib.search", block=True)
X, y = load_digits(return_X_y=True)
folder = tempfile.mkdtemp(prefix="bench-dashboard-")
split_paths = persist_cv_splits(X, y, StratifiedKFold(5, shuffle=True, random_state=0), folder)
grid = {"C": [0.1, 1, 10, 100], "gamma": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]}


def search():
    run = launch_search(lview, SVC(), grid, split_paths)
    run.wait(progress_bar=False)
    assert not run.errors, run.errors


def timed(watched, interval):
    cpu, start = time.process_time(), time.perf_counter()
    if watched:
        with watch(client, interval, display=False) as view:
            search()
        frames, update_bytes = view.frames, sum(
            len(p.value) for p in view.widget.children)
    else:
        search()
        frames, update_bytes = 0, 0
    wall = time.perf_counter() - start
    return {"wall_s": wall, "cpu_per_s": (time.process_time() - cpu) / wall,
            "frames": frames, "update_bytes": update_bytes}


search()  # warm-up: engines import and cache everything once
"""


def run(kc, code, timeout=900):
    """Execute ``code`` in the kernel; return what it printed (raise on an error)."""
    out = []

    def hook(msg):
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            out.append("\n".join(msg["content"]["traceback"]))

    reply = kc.execute_interactive(code, timeout=timeout, output_hook=hook)
    if reply["content"]["status"] != "ok":
        raise RuntimeError("".join(out))
    return "".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        run(kc, SETUP)
        memory = "print(json.dumps(process_memory()))"
        bare = json.loads(run(kc, memory))
        importing = "from course_lib.dashboard import watch; import ipywidgets"
        before = json.loads(run(kc, f"{importing}; {memory}"))
        ratios, plain_cpu, watched_cpu = [], [], []
        print(f"{'pair':>4}{'plain (s)':>12}{'watched (s)':>13}{'ratio':>8}{'frames':>8}")
        for pair in range(args.pairs):
            # Alternate which goes first, so that a drift in load hits both alike.
            order = (False, True) if pair % 2 == 0 else (True, False)
            times = {}
            for watched in order:
                code = f"print(json.dumps(timed({watched}, {args.interval})))"
                times[watched] = json.loads(run(kc, code))
            ratio = times[True]["wall_s"] / times[False]["wall_s"]
            ratios.append(ratio)
            plain_cpu.append(times[False]["cpu_per_s"])
            watched_cpu.append(times[True]["cpu_per_s"])
            print(
                f"{pair:>4}{times[False]['wall_s']:>12.2f}{times[True]['wall_s']:>13.2f}"
                f"{ratio:>8.3f}{times[True]['frames']:>8}"
            )
        after = json.loads(run(kc, memory))
        update_bytes = times[True]["update_bytes"]
        run(kc, "cluster.stop(); import shutil; shutil.rmtree(folder, ignore_errors=True)")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    view_cpu = statistics.median(watched_cpu) - statistics.median(plain_cpu)
    print(
        f"kernel CPU per wall second: plain {statistics.median(plain_cpu):.3f}, "
        f"watched {statistics.median(watched_cpu):.3f}: the view uses {view_cpu:+.3f} of a "
        f"core, {view_cpu / 2:+.1%} of what 2 engines compute with (load-independent)"
    )
    print(
        f"the view's footprint in the kernel: USS {before['uss_mb'] - bare['uss_mb']:+.1f} MiB "
        f"to import it (ipywidgets), {after['uss_mb'] - before['uss_mb']:+.1f} MiB after "
        f"{args.pairs} watched searches; {update_bytes / 1024:.1f} KiB per update "
        f"(status, memory chart, timeline) every {args.interval} s"
    )
    median = statistics.median(ratios)
    print(
        f"watched search / plain search = {median:.3f} (median of {args.pairs} pairs; "
        f"target <= 1.05): {'OK' if median <= 1.05 else 'TOO SLOW'}"
    )


if __name__ == "__main__":
    main()
