"""How much host memory do E engines need to work on one dataset of D MiB?

Two ways, on the same data, in one run:

(a) naive: the client sends every engine its own copy of the training split;
(b) memmap: the split is persisted once with ``persist_cv_splits`` and every
    engine opens it with ``load_cv_split`` (read-only memory map).

Each engine computes ``X_train.T @ X_train`` on the whole training split while
a :class:`~course_lib.memory.MemoryMonitor` samples the host's used memory
(total - available) and each engine's USS. Each engine also reports its own
USS and PSS while it holds the data, to explain the figures: a copy is private
(USS counts it in full); a mapped file is shared (PSS splits it between the
engines mapping it, USS does not count it) -- but an engine that maps it
while no other engine does sees it in its USS.

"Used" memory leaves out the page cache, which the kernel can drop: the mapped
split lives there, once per host. The file is evicted from the cache before
(b) so that the engines read it cold, and the report also prints the growth
counting the page cache it filled. In (a), ipyparallel's controller keeps the
buffers of every request in its task database, one more copy per engine.

Usage::

    python bench/memory_sharing.py --size-mb 500 --engines 2

The last line printed is the headline figure:
``memmap growth/D = x.xx (naive = y.yy, E engines)``, by default the growth
of the host's used memory; ``--measure pss`` makes it the growth of the
summed PSS of client, controller and engines, which other programs running
on the host do not disturb. Target: memmap <= 1.2 while naive is about E.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import numpy as np
import psutil
from sklearn.model_selection import KFold

from course_lib.cluster import cluster_processes, default_n_engines, local_cluster
from course_lib.memory import MIB, MemoryMonitor, process_memory
from course_lib.splits import persist_cv_splits, remove_cv_splits, warm_page_cache


def gram_of_copy(X_train):
    """On an engine: work on the copy the client sent."""
    import numpy as np

    from course_lib.memory import process_memory

    gram = X_train.T @ X_train
    return float(np.trace(gram)), process_memory()


def gram_of_split(path):
    """On an engine: map the persisted split and work on it."""
    import numpy as np

    from course_lib.memory import process_memory
    from course_lib.splits import load_cv_split

    X_train, _, _, _ = load_cv_split(path)
    gram = X_train.T @ X_train
    return float(np.trace(gram)), process_memory()


def make_data(size_mb, n_features, seed=0):
    """A float64 dataset of about ``size_mb`` MiB, filled chunk by chunk."""
    n_samples = int(size_mb * MIB) // (8 * n_features)
    rng = np.random.default_rng(seed)
    X = np.empty((n_samples, n_features))
    for start in range(0, n_samples, 100_000):
        chunk = X[start : start + 100_000]
        chunk[:] = rng.standard_normal(chunk.shape)
    y = rng.integers(0, 2, n_samples)
    return X, y


def evict_from_page_cache(path):
    """Drop a (flushed) file's pages from the page cache, so it is read cold."""
    with open(path, "rb") as file:
        os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def run(view, task, argument, interval):
    """Run ``task(argument)`` on every engine under the monitors."""
    controller_pid = view.client.cluster.controller.pid
    ours = [psutil.Process(), *cluster_processes(view.client.cluster)]
    others = {"client": None, "controller": controller_pid}
    before = {name: process_memory(pid)["uss_mb"] for name, pid in others.items()}
    cache_before = psutil.virtual_memory().cached
    start = time.perf_counter()
    # Summed PSS of the client, controller and engines: a mapped file counts
    # once, a copy as often as it exists, and other programs on the host do
    # not disturb it as they do the host's used memory.
    with MemoryMonitor(interval=4 * interval, measure="pss", processes=ours) as pss:
        with MemoryMonitor(view, interval=interval) as monitor:
            replies = view.apply_sync(task, argument)
    seconds = time.perf_counter() - start
    extra = {
        "page cache": (psutil.virtual_memory().cached - cache_before) / MIB,
        "pss": pss.peak_growth_mb["processes"],
        **{name: process_memory(pid)["uss_mb"] - before[name] for name, pid in others.items()},
    }
    return monitor, replies, seconds, extra


def report(label, monitor, replies, seconds, extra, size_mb, measure):
    growth = monitor.peak_growth_mb
    print(f"\n{label}: {seconds:.1f} s")
    for engine_id, (_, mem) in zip(sorted(growth["engines"]), replies, strict=True):
        print(
            f"  engine {engine_id}: peak USS growth {growth['engines'][engine_id]:7.1f} MiB;"
            f" holding the data: USS {mem['uss_mb']:6.1f}, PSS {mem['pss_mb']:6.1f},"
            f" RSS {mem['rss_mb']:6.1f} MiB"
        )
    print(
        f"  afterwards: client USS {extra['client']:+.1f} MiB, controller USS "
        f"{extra['controller']:+.1f} MiB, page cache {extra['page cache']:+.1f} MiB"
    )
    ratios = {"host": growth["host"] / size_mb, "pss": extra["pss"] / size_mb}
    with_cache = (growth["host"] + max(0.0, extra["page cache"])) / size_mb
    print(
        f"  host used memory (total - available): peak growth {growth['host']:7.1f} MiB"
        f" = {ratios['host']:.2f} D (with the page cache it filled: {with_cache:.2f} D)"
    )
    print(
        f"  client + controller + engines, summed PSS: peak growth {extra['pss']:7.1f} MiB"
        f" = {ratios['pss']:.2f} D"
    )
    return ratios[measure]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", "-D", type=float, default=500, help="dataset size D (MiB)")
    parser.add_argument(
        "--engines", "-E", type=int, default=default_n_engines(), help="engines E (default: CPUs)"
    )
    parser.add_argument("--features", type=int, default=100, help="columns of X")
    parser.add_argument("--interval", type=float, default=0.05, help="sampling period (s)")
    parser.add_argument(
        "--measure",
        choices=["host", "pss"],
        default="host",
        help="headline growth: the host's used memory (default), or the summed PSS of the"
        " client, controller and engines (not disturbed by other programs on the host)",
    )
    parser.add_argument("--folder", help="where to persist the split (default: a temp folder)")
    args = parser.parse_args(argv)

    X, y = make_data(args.size_mb, args.features)
    size_mb = X.nbytes / MIB
    train, test = next(KFold(5).split(X))
    X_train = X[train]  # the naive way sends this to every engine
    print(
        f"D = {size_mb:.0f} MiB ({X.shape[0]} x {X.shape[1]} float64), training split "
        f"{X_train.nbytes / MIB:.0f} MiB, E = {args.engines} engines"
    )
    folder = args.folder or tempfile.mkdtemp(prefix="memory-sharing-")
    try:
        start = time.perf_counter()
        paths = persist_cv_splits(X, y, [(train, test)], folder)
        print(f"persisted once in {time.perf_counter() - start:.1f} s: {paths[0]}")
        with local_cluster(args.engines, progress=False) as client:
            view = client[:]
            view.apply_sync(_warm_imports)
            print(f"client process: {process_memory()['uss_mb']:.0f} MiB USS (holds X and X_train)")

            # Cold start: the engines' page faults read the file into the page
            # cache, once for all of them (warm_page_cache would do it ahead).
            evict_from_page_cache(paths[0])
            mapped = run(view, gram_of_split, str(paths[0]), args.interval)
            memmap_ratio = report(
                "(b) memmap, split persisted once", *mapped, size_mb, args.measure
            )
            warmed = warm_page_cache(client, paths)
            print(f"  (warm_page_cache now reads {sum(warmed.values()) / MIB:.0f} MiB per host)")

            naive = run(view, gram_of_copy, X_train, args.interval)
            naive_ratio = report("(a) naive, one copy per engine", *naive, size_mb, args.measure)
            print(
                "  (ipyparallel's controller keeps every request's buffers in its task"
                " database: one more copy per engine until purged)"
            )
            traces = {reply[0] for reply in mapped[1] + naive[1]}
            assert np.allclose(min(traces), max(traces)), "both ways must compute the same"
            client.purge_everything()
            remove_cv_splits(paths)
    finally:
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)
    measured = {"host": "the host's used memory", "pss": "summed PSS of the cluster's processes"}
    print(f"\nheadline growth: {measured[args.measure]} (--measure {args.measure})")
    print(
        f"memmap growth/D = {memmap_ratio:.2f} (naive = {naive_ratio:.2f}, {args.engines} engines)"
    )


def _warm_imports():
    import course_lib.memory  # noqa: F401
    import course_lib.splits  # noqa: F401


if __name__ == "__main__":
    main()
