"""Bad input is refused at the door, and nothing is destroyed by it.

One table of what a careless user types, module by module. Every case asserts
the error type, that the message names the value given, and that nothing
changed: the files under the test's folder, this process's child processes,
and the tasks the shared cluster has seen (none may be submitted).
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bad_input import assert_unchanged, snapshot
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import Perceptron
from sklearn.model_selection import GroupKFold
from sklearn.svm import SVC

from course_lib import averaging, cluster, datasets, memory, quiz, search, splits, text


@dataclass
class World:
    """Files a careless user points at, made once for the whole table."""

    root: Path
    client: Any
    X: np.ndarray
    y: np.ndarray
    paths: list
    csv: Path
    notes: Path
    results: Path
    results_lines: Path
    empty_dir: Path
    missing: Path

    @property
    def view(self):
        return self.client.load_balanced_view()


@pytest.fixture(scope="module")
def world(client, tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), np.arange(60) % 2
    paths = splits.persist_cv_splits(X, y, 3, root / "splits")
    csv = datasets.make_tweet_corpus(400, path=root / "tweets.csv")
    notes = root / "notes.txt"
    notes.write_text("shopping list\n")
    results = root / "results.json"
    results.write_text('{"results": [0.91, 0.93]}')  # no final newline
    results_lines = root / "results.jsonl"
    results_lines.write_text('{"C": 1, "score": 0.9}\n')
    empty_dir = root / "empty_dir"
    empty_dir.mkdir()
    (root / "mine_split1.joblib").write_text("my own model, under an unlucky name")
    return World(
        root, client, X, y, paths, csv, notes, results, results_lines, empty_dir, root / "nope.csv"
    )


@dataclass
class Case:
    id: str
    call: Callable[[World], Any]
    error: type
    names: Callable[[World], str]  # text the message must hold: the value given


def _search(w, **change):
    arguments = {
        "view": w.view,
        "estimator": SVC(),
        "param_space": {"C": [1.0, 10.0]},
        "split_paths": w.paths,
    }
    arguments.update(change)
    return search.launch_search(
        arguments.pop("view"),
        arguments.pop("estimator"),
        arguments.pop("param_space"),
        arguments.pop("split_paths"),
        **arguments,
    )


def _fitted_and_unfitted():
    fitted = Perceptron().fit(np.eye(3), [0, 1, 1])
    return [fitted, Perceptron()]


CASES = [
    # cluster (no process may start)
    Case(
        "cluster.local_cluster(0)",
        lambda w: cluster.local_cluster(0),
        ValueError,
        lambda w: "n_engines == 0",
    ),
    Case(
        "cluster.local_cluster('2')",
        lambda w: cluster.local_cluster("2"),
        TypeError,
        lambda w: "'2'",
    ),
    Case(
        "cluster.local_cluster(2, timeout=-1)",
        lambda w: cluster.local_cluster(2, timeout=-1),
        ValueError,
        lambda w: "-1",
    ),
    Case(
        "cluster.add_engines(client, 0)",
        lambda w: cluster.add_engines(w.client, 0),
        ValueError,
        lambda w: "n_engines == 0",
    ),
    # quiz
    Case(
        "quiz.seal('q', 60, 42)",
        lambda w: quiz.seal("q", 60, 42),
        TypeError,
        lambda w: "42 (of type int)",
    ),
    Case("quiz.key(42, 60)", lambda w: quiz.key(42, 60), TypeError, lambda w: "42"),
    Case(
        "quiz.key('bad question!', 1)",
        lambda w: quiz.key("bad question!", 1),
        ValueError,
        lambda w: "'bad question!'",
    ),
    Case(
        "quiz.check(1, 'no-such-quiz')",
        lambda w: quiz.check(1, "no-such-quiz"),
        ValueError,
        lambda w: "'no-such-quiz'",
    ),
    Case("quiz.is_correct(1, 42)", lambda w: quiz.is_correct(1, 42), TypeError, lambda w: "42"),
    Case(
        "quiz.check({'a': 1}, key)",
        lambda w: quiz.check({"a": 1}, quiz.key("q", 1)),
        TypeError,
        lambda w: "{'a': 1} (of type dict)",
    ),
    # memory
    Case(
        "memory.process_memory(pid=-3)",
        lambda w: memory.process_memory(-3),
        ValueError,
        lambda w: "-3",
    ),
    Case(
        "memory.process_memory(pid='1')",
        lambda w: memory.process_memory("1"),
        TypeError,
        lambda w: "'1'",
    ),
    Case(
        "memory.engine_memory('client')",
        lambda w: memory.engine_memory("client"),
        TypeError,
        lambda w: "'client'",
    ),
    Case("memory.host_memory(42)", lambda w: memory.host_memory(42), TypeError, lambda w: "42"),
    Case(
        "memory.MemoryMonitor(interval=0)",
        lambda w: memory.MemoryMonitor(interval=0),
        ValueError,
        lambda w: "interval == 0",
    ),
    Case(
        "memory.MemoryMonitor(interval='1s')",
        lambda w: memory.MemoryMonitor(interval="1s"),
        TypeError,
        lambda w: "'1s'",
    ),
    Case(
        "memory.MemoryMonitor(client='c')",
        lambda w: memory.MemoryMonitor("c"),
        TypeError,
        lambda w: "'c'",
    ),
    Case(
        "memory.MemoryMonitor(sample_by_pid='yes')",
        lambda w: memory.MemoryMonitor(sample_by_pid="yes"),
        TypeError,
        lambda w: "'yes'",
    ),
    # splits
    Case(
        "splits.persist(cv=1)",
        lambda w: splits.persist_cv_splits(w.X, w.y, 1, w.root / "s"),
        ValueError,
        lambda w: "cv == 1",
    ),
    Case(
        "splits.persist(GroupKFold without groups)",
        lambda w: splits.persist_cv_splits(w.X, w.y, GroupKFold(3), w.root / "s"),
        ValueError,
        lambda w: "GroupKFold(n_splits=3",
    ),
    Case(
        "splits.persist(y too short)",
        lambda w: splits.persist_cv_splits(w.X, w.y[:-1], 2, w.root / "s"),
        ValueError,
        lambda w: "59",
    ),
    Case(
        "splits.persist(name='a/b')",
        lambda w: splits.persist_cv_splits(w.X, w.y, 2, w.root / "s", name="a/b"),
        ValueError,
        lambda w: "'a/b'",
    ),
    Case(
        "splits.persist(folder under a file)",
        lambda w: splits.persist_cv_splits(w.X, w.y, 2, w.notes / "s"),
        NotADirectoryError,
        lambda w: str(w.notes / "s"),
    ),
    Case(
        "splits.persist(a foreign file under a split's name)",
        lambda w: splits.persist_cv_splits(w.X, w.y, 2, w.root, name="mine"),
        FileExistsError,
        lambda w: str(w.root / "mine_split1.joblib"),
    ),
    Case(
        "splits.load_cv_split(a text file)",
        lambda w: splits.load_cv_split(w.notes),
        ValueError,
        lambda w: str(w.notes),
    ),
    Case(
        "splits.load_cv_split(mmap_mode='r+')",
        lambda w: splits.load_cv_split(w.paths[0], mmap_mode="r+"),
        ValueError,
        lambda w: "'r+'",
    ),
    Case(
        "splits.load_cv_split(missing)",
        lambda w: splits.load_cv_split(w.missing),
        FileNotFoundError,
        lambda w: str(w.missing),
    ),
    Case(
        "splits.remove_cv_splits([split, notes])",
        lambda w: splits.remove_cv_splits([w.paths[0], w.notes]),
        ValueError,
        lambda w: str(w.notes),
    ),
    Case(
        "splits.warm_page_cache([missing])",
        lambda w: splits.warm_page_cache(w.client, [w.paths[0], w.missing]),
        FileNotFoundError,
        lambda w: str(w.missing),
    ),
    Case(
        "splits.warm_page_cache(a folder)",
        lambda w: splits.warm_page_cache(w.client, [w.empty_dir]),
        IsADirectoryError,
        lambda w: str(w.empty_dir),
    ),
    Case(
        "splits.warm_page_cache('view')",
        lambda w: splits.warm_page_cache("view", w.paths),
        TypeError,
        lambda w: "'view'",
    ),
    # search
    Case(
        "search journal=JSON without final newline",
        lambda w: _search(w, journal=w.results),
        ValueError,
        lambda w: str(w.results),
    ),
    Case(
        "search journal=JSON lines of another kind",
        lambda w: _search(w, journal=w.results_lines),
        ValueError,
        lambda w: str(w.results_lines),
    ),
    Case(
        "search journal=a folder",
        lambda w: _search(w, journal=w.empty_dir),
        IsADirectoryError,
        lambda w: str(w.empty_dir),
    ),
    Case(
        "search journal in a missing folder",
        lambda w: _search(w, journal=w.root / "no" / "j.jsonl"),
        FileNotFoundError,
        lambda w: str(w.root / "no" / "j.jsonl"),
    ),
    Case("search journal=42", lambda w: _search(w, journal=42), TypeError, lambda w: "42"),
    Case(
        "search strategy='grid' with a halving setting",
        lambda w: _search(w, strategy="grid", factor=3),
        TypeError,
        lambda w: "factor",
    ),
    Case(
        "search strategy_params={'patience': 2} for grid",
        lambda w: _search(w, strategy_params={"patience": 2}),
        TypeError,
        lambda w: "patience",
    ),
    Case(
        "search strategy='bayesian'",
        lambda w: _search(w, strategy="bayesian"),
        ValueError,
        lambda w: "'bayesian'",
    ),
    Case(
        "search n_iter=0",
        lambda w: _search(w, strategy="random", n_iter=0),
        ValueError,
        lambda w: "n_iter == 0",
    ),
    Case("search param_space={}", lambda w: _search(w, param_space={}), ValueError, lambda w: "{}"),
    Case(
        "search a parameter SVC lacks",
        lambda w: _search(w, param_space={"kernel_size": [1]}),
        ValueError,
        lambda w: "kernel_size",
    ),
    Case(
        "search split_paths=[missing]",
        lambda w: _search(w, split_paths=[w.missing]),
        FileNotFoundError,
        lambda w: str(w.missing),
    ),
    Case(
        "search split_paths=one str",
        lambda w: _search(w, split_paths=str(w.paths[0])),
        TypeError,
        lambda w: str(w.paths[0]),
    ),
    Case(
        "search retries=-1", lambda w: _search(w, retries=-1), ValueError, lambda w: "retries == -1"
    ),
    Case("search view=client", lambda w: _search(w, view=w.client), TypeError, lambda w: "Client"),
    Case(
        "search scoring='accuracyy'",
        lambda w: _search(w, scoring="accuracyy"),
        ValueError,
        lambda w: "accuracyy",
    ),
    Case(
        "search estimator=SVC (the class)",
        lambda w: _search(w, estimator=SVC),
        TypeError,
        lambda w: "SVC()",
    ),
    # text
    Case(
        "text.read_tweets(missing)",
        lambda w: text.read_tweets(w.missing),
        FileNotFoundError,
        lambda w: str(w.missing),
    ),
    Case(
        "text.read_tweets(a folder)",
        lambda w: text.read_tweets(w.empty_dir),
        IsADirectoryError,
        lambda w: str(w.empty_dir),
    ),
    Case(
        "text.read_tweets(a binary file)",
        lambda w: text.read_tweets(w.paths[0]),
        ValueError,
        lambda w: str(w.paths[0]),
    ),
    Case(
        "text.read_tweets(a text file that is no tweets CSV)",
        lambda w: text.read_tweets(w.notes),
        ValueError,
        lambda w: str(w.notes),
    ),
    Case(
        "text.read_tweets(n_partitions=0)",
        lambda w: text.read_tweets(w.csv, n_partitions=0),
        ValueError,
        lambda w: "n_partitions == 0",
    ),
    Case(
        "text.read_tweets(partition_id=2 of 2)",
        lambda w: text.read_tweets(w.csv, n_partitions=2, partition_id=2),
        ValueError,
        lambda w: "partition_id == 2",
    ),
    Case(
        "text.TweetStream('one text')",
        lambda w: text.TweetStream("good day", [1]),
        TypeError,
        lambda w: "'good day'",
    ),
    Case(
        "text.TweetStream(batch_size=0)",
        lambda w: text.TweetStream(["a", "b"], [1, -1], batch_size=0),
        ValueError,
        lambda w: "batch_size == 0",
    ),
    Case(
        "text.make_hashing_vectorizer(n_feature=...)",
        lambda w: text.make_hashing_vectorizer(n_feature=2**10),
        TypeError,
        lambda w: "n_feature",
    ),
    Case(
        "text.train_online(stream='texts')",
        lambda w: text.train_online(
            "texts", Perceptron(), text.make_hashing_vectorizer(), ["a"], [1], 2, 1
        ),
        TypeError,
        lambda w: "'texts'",
    ),
    Case(
        "text.plot_learning_curve([])",
        lambda w: text.plot_learning_curve([]),
        ValueError,
        lambda w: "[]",
    ),
    # averaging
    Case(
        "averaging.average_linear_models([])",
        lambda w: averaging.average_linear_models([]),
        ValueError,
        lambda w: "empty",
    ),
    Case(
        "averaging.average_linear_models('model')",
        lambda w: averaging.average_linear_models("model"),
        TypeError,
        lambda w: "'model'",
    ),
    Case(
        "averaging.average_linear_models([fitted, unfitted])",
        lambda w: averaging.average_linear_models(_fitted_and_unfitted()),
        ValueError,
        lambda w: "models[1]",
    ),
    Case(
        "averaging.train_on_partitions(missing)",
        lambda w: averaging.train_on_partitions(
            w.view, w.missing, 2, Perceptron, text.make_hashing_vectorizer()
        ),
        FileNotFoundError,
        lambda w: str(w.missing),
    ),
    Case(
        "averaging.train_on_partitions(n_partitions=0)",
        lambda w: averaging.train_on_partitions(
            w.view, w.csv, 0, Perceptron, text.make_hashing_vectorizer()
        ),
        ValueError,
        lambda w: "n_partitions == 0",
    ),
    Case(
        "averaging.train_on_partitions(TfidfVectorizer())",
        lambda w: averaging.train_on_partitions(w.view, w.csv, 2, Perceptron, TfidfVectorizer()),
        ValueError,
        lambda w: "TfidfVectorizer()",
    ),
    # datasets
    Case(
        "datasets.make_tweet_corpus(path=<a file>/tweets.csv)",
        lambda w: datasets.make_tweet_corpus(10, path=w.notes / "tweets.csv"),
        NotADirectoryError,
        lambda w: str(w.notes / "tweets.csv"),
    ),
    Case(
        "datasets.make_tweet_corpus(path=<a text file>)",
        lambda w: datasets.make_tweet_corpus(10, path=w.notes),
        FileExistsError,
        lambda w: str(w.notes),
    ),
    Case(
        "datasets.make_tweet_corpus(path=<another corpus>)",
        lambda w: datasets.make_tweet_corpus(10, path=w.csv),
        FileExistsError,
        lambda w: str(w.csv),
    ),
    Case(
        "datasets.make_tweet_corpus(path=<a folder>)",
        lambda w: datasets.make_tweet_corpus(10, path=w.empty_dir),
        IsADirectoryError,
        lambda w: str(w.empty_dir),
    ),
    Case(
        "datasets.make_tweet_corpus(0)",
        lambda w: datasets.make_tweet_corpus(0),
        ValueError,
        lambda w: "n_samples == 0",
    ),
    Case(
        "datasets.make_tweet_corpus(overwrite='yes')",
        lambda w: datasets.make_tweet_corpus(10, path=w.csv, overwrite="yes"),
        TypeError,
        lambda w: "'yes'",
    ),
    Case(
        "datasets.fetch_sentiment140(url='file:///etc/passwd')",
        lambda w: datasets.fetch_sentiment140(w.root, url="file:///etc/passwd"),
        ValueError,
        lambda w: "file:///etc/passwd",
    ),
    Case(
        "datasets.fetch_sentiment140(sha256='abc')",
        lambda w: datasets.fetch_sentiment140(w.root, sha256="abc"),
        ValueError,
        lambda w: "'abc'",
    ),
    Case(
        "datasets.fetch_sentiment140(data_home=<a file>)",
        lambda w: datasets.fetch_sentiment140(w.notes),
        NotADirectoryError,
        lambda w: str(w.notes),
    ),
    Case(
        "datasets.get_data_home(<a file>/data)",
        lambda w: datasets.get_data_home(w.notes / "data"),
        NotADirectoryError,
        lambda w: str(w.notes / "data"),
    ),
]


def test_the_table_is_large_enough():
    assert len(CASES) >= 40
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_and_nothing_changes(world, case):
    history = len(world.client.history)
    before = snapshot(world.root)
    with pytest.raises(case.error) as info:
        case.call(world)
    assert info.type is case.error, f"{info.type.__name__}: {info.value}"
    assert case.names(world) in str(info.value), str(info.value)
    assert_unchanged(before, [world.root])
    assert len(world.client.history) == history, "a task was submitted"


def test_the_data_loss_case_of_the_issue_keeps_the_file(world):
    """The journal that used to be wiped: a JSON object with no final newline."""
    content = world.results.read_bytes()
    with pytest.raises(ValueError, match=re.escape(str(world.results))) as info:
        _search(world, journal=world.results)
    assert "left unchanged" in str(info.value)
    assert world.results.read_bytes() == content


# --------------------------------------------------------------------------
# The grading command line (its main(), as `python -m course_lib.grading` runs
# it): a --root that is not a course creates nothing
# --------------------------------------------------------------------------


def _not_a_course(tmp):
    """A folder that holds a student release but no solutions/: a typo in --root."""
    release = tmp / "typo" / "lessons" / "01_intro"
    release.mkdir(parents=True)
    (release / "01_intro.ipynb").write_text('{"cells": []}')
    (tmp / "subs" / "alice" / "01_intro").mkdir(parents=True)
    return tmp / "typo"


def _course_with_a_stale_release(tmp):
    """A course whose lessons/ holds a lesson that solutions/ no longer has."""
    root = tmp / "course"
    (root / "solutions" / "01_intro").mkdir(parents=True)
    (root / "solutions" / "01_intro" / "01_intro.ipynb").write_text('{"cells": []}')
    (root / "nbgrader_config.py").write_text("c = get_config()  # noqa: F821\n")
    (root / "lessons" / "02_gone").mkdir(parents=True)
    (root / "lessons" / "02_gone" / "02_gone.ipynb").write_text('{"cells": []}')
    return root


CLI_CASES = [
    ("release --root <no solutions/>", _not_a_course, ["release"], "typo"),
    ("check-release --root <no solutions/>", _not_a_course, ["check-release"], "typo"),
    ("verify-exercises --root <no solutions/>", _not_a_course, ["verify-exercises"], "typo"),
    ("grade --root <no solutions/>", _not_a_course, ["grade", "subs"], "typo"),
    (
        "grade --root <missing folder>",
        lambda tmp: _not_a_course(tmp).parent / "nowhere",
        ["grade", "subs"],
        "nowhere",
    ),
    (
        "release with a lesson whose solutions/ is gone",
        _course_with_a_stale_release,
        ["release"],
        "02_gone",
    ),
]


@pytest.mark.parametrize(
    "make_root, command, names", [case[1:] for case in CLI_CASES], ids=[c[0] for c in CLI_CASES]
)
def test_grading_command_line_refuses_and_creates_nothing(
    tmp_path, monkeypatch, capsys, make_root, command, names
):
    from course_lib.grading.cli import main

    root = make_root(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    assert main(["--root", str(root), *command]) == 2
    assert names in capsys.readouterr().err
    assert_unchanged(before, [tmp_path])


def test_a_submission_that_is_a_file_gets_a_clear_note(tmp_path):
    from course_lib.grading.autograde import grade_one
    from course_lib.grading.layout import PreparedLesson
    from course_lib.grading.runner import Workspace

    submitted = tmp_path / "alice" / "01_intro"
    submitted.parent.mkdir()
    submitted.write_text("my answers, in a file of the lesson's name")
    lesson = PreparedLesson("01_intro", tmp_path / "solutions", tmp_path / "release", [])
    workspace = Workspace(sandbox=False)
    try:
        outcome, _ = grade_one(
            workspace, lesson, "alice", submitted, None, timeout=60, task_timeout=60
        )
    finally:
        workspace.cleanup()
    assert outcome.status == "missing"
    assert outcome.notes == [
        "alice/01_intro is a file, not a folder: submit the lesson's folder, with its "
        "notebook inside (alice/01_intro/*.ipynb)"
    ]
    assert submitted.read_text() == "my answers, in a file of the lesson's name"
