"""What a search's results say: the ranking rule, ``cv_results_``, the report, the plots.

Presentation only, on a :class:`History` (a consistent copy of a
:class:`~course_lib.search.SearchRun`'s results taken under its lock); the
scheduling lives in :mod:`course_lib.search`.

The ranking rule (one rule, for ``best()``, ``best_params_`` and the report)
---------------------------------------------------------------------------
A candidate's score in a round is its mean test score over the splits it has
finished there; a candidate with a split that raised is left out. Only
scores that compare are ranked together: every round's when the strategy's
rounds use the same resource (grid, random, the patient search), else only
the latest round with results (successive halving: rounds differ in
resource). Higher is better; ties go to the lower candidate index.
``best()`` lists this ranking (``n_splits`` says how many splits each row
has); ``best_params_`` is its first row scored on *every* split.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata


@dataclass(frozen=True)
class History:
    """The results of a search at one moment: what strategies and presentation read.

    Attributes
    ----------
    candidates : list of dict
    n_splits : int
    plan : list of (n_resources, n_candidates)
        The rounds the search may run.
    rounds : list of list of int
        Candidate indices of every round started, in order.
    records : dict
        ``(round, candidate, split) -> result``.
    errors : list of dict
        Tasks that raised, with ``round``, ``candidate`` and ``split``.
    """

    candidates: list
    n_splits: int
    plan: list
    rounds: list
    records: dict
    errors: list

    def scores(self, index, candidate, key="test_score"):
        """A candidate's ``key`` in round ``index``, one per split (NaN: missing or failed)."""
        scores = np.full(self.n_splits, np.nan)
        for split in range(self.n_splits):
            record = self.records.get((index, candidate, split))
            if record is not None and key in record:
                scores[split] = record[key]
        return scores

    def failed(self, index):
        """Candidates of round ``index`` with a split that raised."""
        return {error["candidate"] for error in self.errors if error["round"] == index}

    def ranked(self, index):
        """Candidates of a round, best mean test score first; ties by index; NaN last.

        A candidate missing a split (failed or not run) has a NaN mean.
        """
        means = {c: self.scores(index, c).mean() for c in self.rounds[index]}
        return sorted(means, key=lambda c: (np.isnan(means[c]), -np.nan_to_num(means[c]), c))


def ranking(history, rounds_compare):
    """Rows of the ranking rule (see the module's docstring), best first.

    Parameters
    ----------
    history : History
    rounds_compare : bool
        True: rank over every round; False: the latest round with results.

    Returns
    -------
    list of dict
        ``candidate``, ``params``, ``round``, ``mean_test_score``,
        ``std_test_score``, ``n_splits`` (splits done), ``n_resources``.

    Examples
    --------
    >>> h = History([{"C": 1}, {"C": 2}], 1, [(None, 2)], [[0, 1]],
    ...             {(0, 0, 0): {"test_score": 0.5}, (0, 1, 0): {"test_score": 0.9}}, [])
    >>> [(row["params"], row["mean_test_score"]) for row in ranking(h, True)]
    [({'C': 2}, 0.9), ({'C': 1}, 0.5)]
    """
    with_results = sorted({key[0] for key in history.records})
    if not with_results:
        return []
    scope = with_results if rounds_compare else with_results[-1:]
    rows = []
    for index in scope:
        failed = history.failed(index)
        for candidate in history.rounds[index]:
            scores = history.scores(index, candidate)
            scores = scores[~np.isnan(scores)]
            if candidate in failed or not scores.size:
                continue
            rows.append(
                {
                    "candidate": candidate,
                    "params": history.candidates[candidate],
                    "round": index,
                    "mean_test_score": float(scores.mean()),
                    "std_test_score": float(scores.std()),
                    "n_splits": int(scores.size),
                    "n_resources": history.plan[index][0],
                }
            )
    rows.sort(key=lambda row: (-row["mean_test_score"], row["candidate"]))
    return rows


def best_complete(history, rounds_compare):
    """The first row of :func:`ranking` scored on every split, or RuntimeError."""
    for row in ranking(history, rounds_compare):
        if row["n_splits"] == history.n_splits:
            return row
    raise RuntimeError(
        "No parameter set has been scored on every split yet; wait() for the "
        "search, or look at best() for the results so far."
    )


def cv_results(history, strategy, return_train_score):
    """The results in scikit-learn's ``cv_results_`` format (see ``SearchRun.cv_results_``)."""
    rows = [
        (index, candidate) for index, chosen in enumerate(history.rounds) for candidate in chosen
    ]
    n_splits = history.n_splits
    arrays = {
        name: np.array(
            [history.scores(index, candidate, name) for index, candidate in rows]
        ).reshape(len(rows), n_splits)
        for name in ("fit_time", "score_time", "test_score", "train_score")
    }
    results = dict(strategy.columns(rows, history.plan))
    for name in ("fit_time", "score_time"):
        results[f"mean_{name}"] = arrays[name].mean(axis=1)
        results[f"std_{name}"] = arrays[name].std(axis=1)
    params = [history.candidates[candidate] for _, candidate in rows]
    results.update(_param_columns(params))
    results["params"] = params
    kinds = ("test", "train") if return_train_score else ("test",)
    for kind in kinds:
        scores = arrays[f"{kind}_score"]
        for split in range(n_splits):
            results[f"split{split}_{kind}_score"] = scores[:, split]
        means = np.average(scores, axis=1)
        results[f"mean_{kind}_score"] = means
        results[f"std_{kind}_score"] = np.sqrt(
            np.average((scores - means[:, np.newaxis]) ** 2, axis=1)
        )
        if kind == "test":
            results["rank_test_score"] = _rank(means)
    return results


def report_lines(run, history, best, n_finished):
    """The lines of ``SearchRun.report``: the search, its rounds, the best, the errors."""
    strategy, n_splits = run.strategy_, history.n_splits
    state = "done" if run.done else "running"
    if run.aborted:
        state = "aborted" + (", running tasks finishing" if not run.done else "")
    errors = history.errors
    lines = [
        f"{run.strategy} search of {len(history.candidates)} parameter sets on "
        f"{n_splits} splits: {n_finished}/{run.n_tasks} tasks "
        f"finished ({run.progress:.0%}), {len(errors)} errors, {state}."
    ]
    unit = strategy.resource
    if len(history.plan) > 1 or len(run.rounds) > 1:
        for r in run.rounds:
            on = f" on {r['n_resources']} {unit}" if unit is not None else ""
            lines.append(
                f"  round {r['round']}: {r['n_candidates']} candidates x "
                f"{n_splits} splits{on}: {r['n_done']}/{r['n_tasks']} tasks, {r['status']}"
            )
    reason = strategy.stop_reason(history) if run.done and not run.aborted else ""
    if reason:
        lines.append(f"  {reason}")
    if best:
        where = f" (on {best[0]['n_resources']} {unit})" if unit is not None else ""
        so_far = "" if run.done else " so far"
        lines.append(f"Best{so_far}{where}: mean test score +/- std (splits done)")
        for row in best:
            lines.append(
                f"  {row['rank']}. {row['mean_test_score']:.4f} +/- "
                f"{row['std_test_score']:.4f} ({row['n_splits']}/{n_splits})"
                f"  {_format_params(row['params'])}"
            )
    for error in errors[:3]:
        lines.append(
            f"Error on split {error['split']} with {_format_params(error['params'])}: "
            f"{error['error']}"
        )
    if len(errors) > 3:
        lines.append(f"... and {len(errors) - 3} more in .errors")
    lines.extend(note for note in (run.journal_error, run.collector_error) if note)
    return lines


def boxplot_parameters(records, candidates, display_train=False):
    """One panel per parameter, one box of scores per value (see ``SearchRun.boxplot_parameters``).

    Parameters
    ----------
    records : list of dict
        The results to draw, all of one resource.
    candidates : list of dict
        Every parameter set of the search: one panel per name.
    display_train : bool, default=False
    """
    import matplotlib.pyplot as plt

    if not records:
        raise RuntimeError("No result yet: there is nothing to draw.")
    names = sorted({name for params in candidates for name in params})
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 4), squeeze=False, sharey=True)
    kinds = ["test_score", "train_score"] if display_train else ["test_score"]
    for ax, name in zip(axes[0], names, strict=True):
        labels, groups, binning = _group_by_value(records, name)
        width = 0.8 / len(kinds)
        for k, kind in enumerate(kinds):
            data = [[r[kind] for r in group] for group in groups]
            positions = np.arange(len(groups)) + (k - (len(kinds) - 1) / 2) * width
            boxes = ax.boxplot(data, positions=positions, widths=width * 0.9, patch_artist=True)
            for patch in boxes["boxes"]:
                patch.set_facecolor(f"C{k}")
                patch.set_alpha(0.6)
                patch.set_label(kind.replace("_", " "))
        ax.set_xticks(np.arange(len(groups)), labels, rotation=45, ha="right")
        ax.set_xlabel(f"{name} ({binning})" if binning else name)
    axes[0][0].set_ylabel("score")
    if display_train:
        handles = [plt.Rectangle((0, 0), 1, 1, color=f"C{k}", alpha=0.6) for k in range(2)]
        axes[0][-1].legend(handles, ["test", "train"])
    fig.tight_layout()
    return fig


# Small helpers


def _rank(means):
    """scikit-learn's rank: 1 is best, ties share the best rank, NaN ranks last."""
    if np.isnan(means).all():
        return np.ones_like(means, dtype=np.int32)
    filled = np.nan_to_num(means, nan=np.nanmin(means) - 1)
    return rankdata(-filled, method="min").astype(np.int32)


def _param_columns(params_list):
    """``param_<name>`` masked arrays, masked where a candidate lacks the parameter."""
    names = sorted({name for params in params_list for name in params})
    columns = {}
    for name in names:
        values = [params[name] for params in params_list if name in params]
        try:
            inferred = np.array(values)
            dtype = inferred.dtype if inferred.dtype.kind != "U" and inferred.ndim == 1 else object
        except ValueError:
            dtype = object
        column = np.ma.MaskedArray(np.empty(len(params_list), dtype=dtype), mask=True)
        for row, params in enumerate(params_list):
            if name in params:
                column[row] = params[name]
        columns[f"param_{name}"] = column
    return columns


def _format_value(value):
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return f"{value:.4g}"
    return repr(value) if isinstance(value, str) else str(value)


def _format_params(params):
    return ", ".join(f"{name}={_format_value(value)}" for name, value in sorted(params.items()))


def _bin_edges(values, n_bins=8):
    """Edges of at most ``n_bins`` bins for continuous values, and whether they are log-spaced.

    Positive values spread over two decades or more (``loguniform``, say) get
    bins of equal width on a log scale; other values get quantile bins, with
    about as many values in each.

    >>> edges, log = _bin_edges([0.001, 0.01, 0.1, 1.0, 10.0], n_bins=4)
    >>> log, [float(f"{e:.3g}") for e in edges]
    (True, [0.001, 0.01, 0.1, 1.0, 10.0])
    """
    values = np.asarray(values, dtype=float)
    low, high = values.min(), values.max()
    if low > 0 and high / low >= 100:
        return np.geomspace(low, high, n_bins + 1), True
    return np.unique(np.quantile(values, np.linspace(0, 1, n_bins + 1))), False


def _group_by_value(records, name, max_boxes=10):
    """(labels, groups of records, binning) for one parameter, in the order of its values.

    Up to ``max_boxes`` distinct values get a box each (``binning`` None);
    more numeric values (a random search over a distribution) are binned with
    :func:`_bin_edges`, and ``binning`` says how.
    """
    present = [r for r in records if name in r["params"]]
    values = [r["params"][name] for r in present]
    numeric = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values) and bool(
        values
    )
    distinct = {_format_value(v): v for v in values}
    if numeric and len(distinct) > max_boxes:
        edges, log = _bin_edges(values)
        bins = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)
        labels = [
            f"{float(lo):.2g} to {float(hi):.2g}"
            for lo, hi in zip(edges[:-1], edges[1:], strict=True)
        ]
        groups = [
            [r for r, b in zip(present, bins, strict=True) if b == i] for i in range(len(labels))
        ]
        keep = [i for i, group in enumerate(groups) if group]
        binning = "log-spaced bins" if log else "quantile bins"
        return [labels[i] for i in keep], [groups[i] for i in keep], binning
    labels = list(distinct)
    if numeric:
        labels.sort(key=lambda label: distinct[label])
    groups = [[r for r in present if _format_value(r["params"][name]) == label] for label in labels]
    return labels, groups, None
