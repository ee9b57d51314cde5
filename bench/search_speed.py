"""Grid search on E engines: course_lib against scikit-learn, and halving against the grid.

Same work for everyone: SVC on the digits data (made ``--scale`` times larger
with shifted, jittered copies, so that fits take seconds), C in logspace(-1, 2, 4),
gamma in logspace(-4, 0, 5), 5 ShuffleSplit splits (test_size=0.25,
random_state=42). In one run:

1. a sequential loop in this process (the reference scores and time);
2. ``GridSearchCV(n_jobs=E, refit=False)`` on the same splits;
3. ``course_lib.search`` grid on E engines (cluster start-up reported apart);
4. ``course_lib.search`` successive halving on the same engines.

Workers are started and have imported scikit-learn before any timing: the
cluster's start-up and joblib's worker start-up are reported apart. The
scores of 1-3 must agree to 1e-12, else the script fails. The last line is
the headline figure.

    python bench/search_speed.py --scale 4 --engines 2
"""

import os

# Engines are the parallelism: BLAS must not oversubscribe (as `make bench`).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import GridSearchCV, ParameterGrid, ShuffleSplit  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

from course_lib.cluster import local_cluster  # noqa: E402
from course_lib.search import evaluate, launch_search  # noqa: E402
from course_lib.splits import persist_cv_splits  # noqa: E402

SPACE = {"C": np.logspace(-1, 2, 4), "gamma": np.logspace(-4, 0, 5)}


def scaled_digits(scale):
    """Digits and ``scale - 1`` copies shifted by one pixel and jittered (pixels are 0-16).

    Shifted, not only jittered: a test image with a barely jittered twin in
    the training set would make every good model score 1.0.
    """
    X, y = load_digits(return_X_y=True)
    rng = np.random.RandomState(0)
    shifts = [(1, 0), (0, 1), (-1, 0), (0, -1), (1, 1), (-1, -1), (1, -1), (-1, 1)]
    copies = [X]
    for k in range(scale - 1):
        dy, dx = shifts[k % len(shifts)]
        images = np.roll(X.reshape(-1, 8, 8), (dy, dx), axis=(1, 2)).reshape(X.shape)
        copies.append(images + rng.normal(scale=1.0, size=X.shape))
    return np.vstack(copies), np.tile(y, scale)


def _show(params):
    return ", ".join(f"{name}={float(value):g}" for name, value in sorted(params.items()))


def _import(name):
    """Import a module in a worker (sent by value to engines: imports inside)."""
    import importlib

    importlib.import_module(name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=4, help="copies of digits (default 4)")
    parser.add_argument("--engines", type=int, default=2, help="engines and joblib workers")
    args = parser.parse_args()
    if args.scale < 1 or args.engines < 1:
        parser.error("--scale and --engines must be >= 1")
    n_engines = args.engines

    X, y = scaled_digits(args.scale)
    cv = list(ShuffleSplit(n_splits=5, test_size=0.25, random_state=42).split(X))
    candidates = list(ParameterGrid(SPACE))
    print(
        f"SVC on digits x{args.scale}: {X.shape[0]} samples, {len(candidates)} parameter sets "
        f"x {len(cv)} splits = {len(candidates) * len(cv)} fits, {n_engines} engines, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    folder = tempfile.mkdtemp(prefix="search-speed-")
    try:
        paths = persist_cv_splits(X, y, cv, folder)

        start = time.perf_counter()
        sequential = np.array(
            [
                [evaluate(path, SVC(), params)["test_score"] for path in paths]
                for params in candidates
            ]
        )
        t_sequential = time.perf_counter() - start
        print(f"{'sequential loop':<26}{t_sequential:8.1f} s")

        start = time.perf_counter()
        Parallel(n_jobs=n_engines)(delayed(_import)("sklearn.svm") for _ in range(4 * n_engines))
        t_workers = time.perf_counter() - start
        start = time.perf_counter()
        sklearn = GridSearchCV(SVC(), SPACE, cv=cv, refit=False, n_jobs=n_engines).fit(X, y)
        t_sklearn = time.perf_counter() - start
        print(
            f"{f'GridSearchCV(n_jobs={n_engines})':<26}{t_sklearn:8.1f} s   "
            f"speed-up {t_sequential / t_sklearn:4.2f}   (worker start-up {t_workers:.1f} s apart)"
        )

        start = time.perf_counter()
        with local_cluster(n_engines, progress=False) as client:
            client[:].apply_sync(_import, "course_lib.search")
            t_cluster = time.perf_counter() - start
            view = client.load_balanced_view()

            start = time.perf_counter()
            grid = launch_search(view, SVC(), SPACE, paths)
            grid.wait(progress_bar=False)
            t_grid = time.perf_counter() - start
            print(
                f"{'course_lib grid':<26}{t_grid:8.1f} s   speed-up "
                f"{t_sequential / t_grid:4.2f}   (cluster start-up {t_cluster:.1f} s apart)"
            )

            start = time.perf_counter()
            halving = launch_search(view, SVC(), SPACE, paths, strategy="halving")
            halving.wait(progress_bar=False)
            t_halving = time.perf_counter() - start
            print(
                f"{'course_lib halving':<26}{t_halving:8.1f} s   "
                f"speed-up {t_sequential / t_halving:4.2f}   rounds: "
                + ", ".join(
                    f"{r['n_candidates']} on {r['n_resources']} samples" for r in halving.rounds
                )
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # the split files with it

    ours = grid.cv_results_
    differences = {
        "GridSearchCV": np.abs(sklearn.cv_results_["mean_test_score"] - sequential.mean(axis=1)),
        "course_lib grid": np.abs(ours["mean_test_score"] - sequential.mean(axis=1)),
    }
    if grid.errors or halving.errors or ours["params"] != sklearn.cv_results_["params"]:
        sys.exit(f"FAILED: errors {grid.errors or halving.errors}, or parameter order differs")
    for name, difference in differences.items():
        if not difference.max() <= 1e-12:
            sys.exit(f"FAILED: {name} scores differ from the sequential loop by {difference.max()}")
    print("scores: GridSearchCV and course_lib grid agree with the sequential loop to 1e-12")

    grid_fit = sum(r["fit_time"] for r in grid.results())
    halving_fit = sum(r["fit_time"] for r in halving.results())
    fraction = halving_fit / grid_fit
    print(
        f"best mean test score: grid {grid.best_score_:.4f} ({_show(grid.best_params_)}), "
        f"halving {halving.best_score_:.4f} ({_show(halving.best_params_)}) "
        f"({100 * (grid.best_score_ - halving.best_score_):+.2f} points below the grid)"
    )
    print(
        f"total fit time: grid {grid_fit:.1f} s, halving {halving_fit:.1f} s; "
        f"mean fit {grid_fit / len(grid.results()):.2f} s; "
        f"load average now {os.getloadavg()[0]:.1f}"
    )
    print(
        f"search/sklearn = {t_grid / t_sklearn:.2f}, speedup = {t_sequential / t_grid:.1f} "
        f"on {n_engines} engines, halving fit-time fraction = {fraction:.2f}"
    )


if __name__ == "__main__":
    main()
