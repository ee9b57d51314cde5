"""The one ranking rule of a search's results, on hand-made histories (no cluster)."""

import numpy as np
import pytest

from course_lib._search_results import History, best_complete, ranking


def history(scores, plan=None, errors=()):
    """``scores``: {(round, candidate): [test score per split, None: not run yet]}."""
    n_splits = max(len(values) for values in scores.values())
    rounds = {}
    records = {}
    for (index, candidate), values in scores.items():
        rounds.setdefault(index, []).append(candidate)
        for split, value in enumerate(values):
            if value is not None:
                records[index, candidate, split] = {"test_score": value}
    n_rounds = max(rounds) + 1
    candidates = [{"c": i} for i in range(1 + max(c for _, c in scores))]
    plan = plan or [(None, len(rounds[i])) for i in range(n_rounds)]
    errors = [{"round": r, "candidate": c, "split": s} for r, c, s in errors]
    return History(
        candidates, n_splits, plan, [rounds[i] for i in range(n_rounds)], records, errors
    )


def test_rounds_that_compare_rank_together():
    h = history({(0, 0): [0.5, 0.5], (0, 1): [0.7, 0.7], (1, 2): [0.9, 0.9], (1, 3): [0.6, 0.6]})
    assert [row["candidate"] for row in ranking(h, rounds_compare=True)] == [2, 1, 3, 0]
    assert best_complete(h, True)["candidate"] == 2


def test_rounds_of_other_resources_rank_alone_the_latest_with_results():
    h = history(
        {(0, 0): [0.5, 0.5], (0, 1): [0.99, 0.99], (1, 0): [0.8, None], (1, 2): [0.7, 0.7]},
        plan=[(10, 2), (30, 2)],
    )
    rows = ranking(h, rounds_compare=False)
    assert [(row["candidate"], row["round"], row["n_resources"]) for row in rows] == [
        (0, 1, 30),
        (2, 1, 30),
    ]
    # best() lists the partial leader; best_params_ is its first row scored on every split.
    assert rows[0]["n_splits"] == 1
    assert best_complete(h, False)["candidate"] == 2


def test_a_candidate_with_a_failed_split_is_left_out_and_ties_go_to_the_lower_index():
    h = history({(0, 0): [0.9, None], (0, 1): [0.6, 0.6], (0, 2): [0.6, 0.6]}, errors=[(0, 0, 1)])
    rows = ranking(h, True)
    assert [row["candidate"] for row in rows] == [1, 2]
    assert rows[0]["mean_test_score"] == pytest.approx(0.6)


def test_nothing_complete_yet_is_a_clear_error():
    h = history({(0, 0): [0.9, None]})
    assert ranking(h, True)[0]["n_splits"] == 1
    with pytest.raises(RuntimeError, match="scored on every split"):
        best_complete(h, True)


def test_ranked_puts_missing_means_last():
    h = history({(0, 0): [0.2, None], (0, 1): [0.4, 0.4], (0, 2): [0.1, 0.1]})
    assert h.ranked(0) == [1, 2, 0]
    assert np.isnan(h.scores(0, 0)).sum() == 1
