"""How long students wait for a 2-engine cluster: course_lib against ipyparallel defaults.

Both ways start a controller and N engines on this machine and stop when every
engine has answered one task; the stop time is reported apart. Runs alternate
so that machine noise hits both alike. The last line is the headline ratio.

    python bench/startup.py --engines 2 --repeat 5
"""

import argparse
import logging
import statistics
import tempfile
import time

import ipyparallel

from course_lib.cluster import local_cluster, stop_cluster


def _answer():
    return 1


def time_defaults(n_engines):
    """ipyparallel's defaults, as its documentation starts a cluster."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as profile_dir:
        cluster = ipyparallel.Cluster(n=n_engines, profile_dir=profile_dir, log_level=logging.ERROR)
        client = cluster.start_and_connect_sync()
        try:
            client[:].apply_sync(_answer)
            up = time.perf_counter() - start
        finally:
            stopping = time.perf_counter()
            stop_cluster(cluster, client)
            down = time.perf_counter() - stopping
    return up, down


def time_course(n_engines):
    start = time.perf_counter()
    cluster = local_cluster(n_engines)
    client = cluster.start()
    try:
        client[:].apply_sync(_answer)
        up = time.perf_counter() - start
    finally:
        stopping = time.perf_counter()
        cluster.stop()
        down = time.perf_counter() - stopping
    return up, down


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    times = {"ipyparallel defaults": [], "course_lib.local_cluster": []}
    for _ in range(args.repeat):
        times["ipyparallel defaults"].append(time_defaults(args.engines))
        times["course_lib.local_cluster"].append(time_course(args.engines))

    print(f"{args.engines} engines, {args.repeat} runs each, median seconds")
    print(f"{'way':<28}{'start to all answering':>24}{'stop':>8}")
    medians = {}
    for way, runs in times.items():
        up = statistics.median(run[0] for run in runs)
        down = statistics.median(run[1] for run in runs)
        medians[way] = up
        print(f"{way:<28}{up:>24.2f}{down:>8.2f}")
    ratio = medians["course_lib.local_cluster"] / medians["ipyparallel defaults"]
    print(
        f"startup course/defaults = {ratio:.2f} "
        f"({medians['course_lib.local_cluster']:.2f} s vs "
        f"{medians['ipyparallel defaults']:.2f} s, {args.engines} engines)"
    )


if __name__ == "__main__":
    main()
