"""course_lib.datasets: the Sentiment140 fetcher (served from 127.0.0.1) and the corpus."""

import csv
import functools
import hashlib
import http.server
import re
import socket
import threading
import zipfile

import numpy as np
import pytest
from sklearn.linear_model import Perceptron

from course_lib.datasets import (
    FIELDNAMES,
    SENTIMENT140_SHA256,
    fetch_sentiment140,
    get_data_home,
    make_tweet_corpus,
)
from course_lib.text import make_hashing_vectorizer, read_tweets

TRAIN_NAME = "training.1600000.processed.noemoticon.csv"
TEST_NAME = "testdata.manual.2009.06.14.csv"
DATE = re.compile(r"^[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d PDT 2009$")


# ---------------------------------------------------------------------------
# fetch_sentiment140, against an archive served from 127.0.0.1
# ---------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def archive_server(tmp_path, monkeypatch):
    """Serve a small Sentiment140-like archive over HTTP on 127.0.0.1.

    Yields ``(url, sha256, members)`` where ``members`` maps each CSV file
    name to its bytes.
    """
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    served = tmp_path / "served"
    served.mkdir()
    members = {
        TRAIN_NAME: make_tweet_corpus(40, path=tmp_path / "train.csv").read_bytes(),
        TEST_NAME: make_tweet_corpus(12, random_state=1, path=tmp_path / "test.csv").read_bytes(),
    }
    archive = served / "trainingandtestdata.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        for name, data in members.items():
            zipped.writestr(name, data)
    sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/{archive.name}", sha256, members
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _closed_port_url():
    """A URL on 127.0.0.1 where nothing listens: a download there fails at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/trainingandtestdata.zip"


def _files_under(folder):
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())


def test_fetch_downloads_checks_unpacks_and_caches(archive_server, tmp_path):
    url, sha256, members = archive_server
    data_home = tmp_path / "data"
    train_csv, test_csv = fetch_sentiment140(data_home, url=url, sha256=sha256)
    assert train_csv == data_home / "sentiment140" / TRAIN_NAME
    assert test_csv == data_home / "sentiment140" / TEST_NAME
    assert train_csv.read_bytes() == members[TRAIN_NAME]
    assert test_csv.read_bytes() == members[TEST_NAME]
    # Unpacked once: the archive is gone, only the two CSV files stay.
    assert _files_under(data_home) == sorted(
        p.relative_to(data_home) for p in (train_csv, test_csv)
    )
    texts, targets = read_tweets(train_csv)
    assert len(texts) > 0 and set(targets.tolist()) <= {-1, 1}

    # A second call needs no network: the server cannot be reached any more.
    again = fetch_sentiment140(data_home, url=_closed_port_url(), sha256=sha256)
    assert again == (train_csv, test_csv)


def test_fetch_reads_mirror_and_data_home_from_environment(archive_server, tmp_path, monkeypatch):
    url, sha256, _ = archive_server
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "from_env"))
    monkeypatch.setenv("COURSE_SENTIMENT140_URL", url)
    train_csv, _ = fetch_sentiment140(sha256=sha256)
    assert train_csv.parent == tmp_path / "from_env" / "sentiment140"
    assert get_data_home() == tmp_path / "from_env"


def test_fetch_refuses_a_wrong_checksum_and_leaves_nothing(archive_server, tmp_path):
    url, sha256, _ = archive_server
    wrong = hashlib.sha256(b"something else").hexdigest()
    data_home = tmp_path / "data"
    with pytest.raises(ValueError, match="SHA-256"):
        fetch_sentiment140(data_home, url=url, sha256=wrong)
    assert _files_under(data_home) == []
    # The real archive's checksum is refused too: this is not that archive.
    assert sha256 != SENTIMENT140_SHA256
    with pytest.raises(ValueError, match="SHA-256"):
        fetch_sentiment140(data_home, url=url)
    assert _files_under(data_home) == []


def test_fetch_without_network_says_what_to_do(tmp_path, capfd):
    data_home = tmp_path / "data"
    url = _closed_port_url()
    with pytest.raises(ConnectionError, match="make_tweet_corpus") as info:
        fetch_sentiment140(data_home, url=url)
    message = str(info.value)
    assert "trainingandtestdata.zip" in message and url in message
    # One quiet, complete sentence: nothing on stderr, no pooch log line.
    assert "\n" not in message and message.endswith(".") and message.count(". ") == 0
    assert "nothing was written" in message
    assert capfd.readouterr().err == ""
    assert _files_under(data_home) == []
    assert not (data_home / "sentiment140").exists()


def test_fetch_of_a_file_that_is_not_a_zip_names_it_and_leaves_nothing(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "trainingandtestdata.zip").write_bytes(b"<html>a login page</html>")
    sha256 = hashlib.sha256(b"<html>a login page</html>").hexdigest()
    data_home = tmp_path / "data"
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/trainingandtestdata.zip"
        with pytest.raises(ValueError, match="not a zip archive") as info:
            fetch_sentiment140(data_home, url=url, sha256=sha256)
    finally:
        server.shutdown()
        server.server_close()
    message = str(info.value)
    assert url in message
    assert str(data_home / "sentiment140" / "trainingandtestdata.zip") in message
    assert "it was deleted" in message
    assert _files_under(data_home) == []


def test_fetch_refuses_an_archive_without_the_csv_files(tmp_path, monkeypatch):
    # An archive with the right checksum but the wrong contents: nothing stays.
    served = tmp_path / "served"
    served.mkdir()
    archive = served / "trainingandtestdata.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr(TRAIN_NAME, b'"0","1","d","NO_QUERY","u","t"\n')
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/{archive.name}"
        sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
        with pytest.raises(ValueError, match=TEST_NAME):
            fetch_sentiment140(tmp_path / "data", url=url, sha256=sha256)
    finally:
        server.shutdown()
        server.server_close()
    assert _files_under(tmp_path / "data") == []


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"url": "file:///etc/passwd"}, ValueError, "file:///etc/passwd"),
        ({"sha256": "abc"}, ValueError, "'abc'"),
        ({"sha256": 42}, TypeError, "42"),
    ],
)
def test_fetch_validates_arguments(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        fetch_sentiment140(tmp_path, **kwargs)


def test_a_bad_mirror_in_the_environment_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_SENTIMENT140_URL", "mirror.example/archive.zip")
    with pytest.raises(ValueError, match="COURSE_SENTIMENT140_URL.*'mirror.example/archive.zip'"):
        fetch_sentiment140(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_data_home_rejects_a_non_path():
    with pytest.raises(TypeError, match="42"):
        get_data_home(42)


# ---------------------------------------------------------------------------
# make_tweet_corpus
# ---------------------------------------------------------------------------


def test_corpus_has_the_sentiment140_layout(tmp_path):
    path = make_tweet_corpus(3000, path=tmp_path / "tweets.csv")
    with open(path, encoding="latin-1", newline="") as handle:
        rows = list(csv.reader(handle))
    assert len(rows) == 3000
    assert all(len(row) == len(FIELDNAMES) for row in rows)
    # Every field quoted, as in the real files.
    first_line = path.read_text(encoding="latin-1").splitlines()[0]
    assert first_line.startswith('"') and first_line.count('","') == 5
    polarities = [row[0] for row in rows]
    assert set(polarities) == {"0", "2", "4"}
    assert 0 < polarities.count("2") < 0.05 * len(rows)
    assert abs(polarities.count("0") - polarities.count("4")) < 0.1 * len(rows)
    # Sorted by polarity, as the real training file.
    assert polarities == sorted(polarities)
    assert all(row[1].isdigit() for row in rows)
    assert all(DATE.match(row[2]) for row in rows), rows[0][2]
    assert {row[3] for row in rows} == {"NO_QUERY"}
    assert all(row[4] and row[5].strip() for row in rows)


def test_corpus_looks_like_tweets(tmp_path):
    path = make_tweet_corpus(3000, path=tmp_path / "tweets.csv")
    texts, targets = read_tweets(path)
    joined = "\n".join(texts)
    assert sum(t.startswith("@") for t in texts) > 0.2 * len(texts)  # mentions
    assert joined.count("http://") > 0.03 * len(texts)  # links
    assert "#" in joined  # hashtags
    assert re.search(r"\b(not|never|don't|can't) \w+", joined)  # negations
    words = re.findall(r"[a-z']+", joined.lower())
    counts = np.sort(np.unique(words, return_counts=True)[1])[::-1]
    # Zipf: a few very frequent words, a long tail of rare ones.
    assert counts[0] > 50 * np.median(counts)
    assert len(counts) > 2000


def test_corpus_is_deterministic_for_a_seed(tmp_path):
    a = make_tweet_corpus(500, random_state=3, path=tmp_path / "a.csv").read_bytes()
    b = make_tweet_corpus(500, random_state=3, path=tmp_path / "b.csv").read_bytes()
    c = make_tweet_corpus(500, random_state=4, path=tmp_path / "c.csv").read_bytes()
    assert a == b
    assert a != c


def test_corpus_is_cached_in_the_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path))
    path = make_tweet_corpus(200, random_state=5)
    assert path.is_file() and tmp_path in path.parents
    before = path.stat().st_mtime_ns
    assert make_tweet_corpus(200, random_state=5) == path
    assert path.stat().st_mtime_ns == before
    assert make_tweet_corpus(201, random_state=5) != path


def test_a_perceptron_learns_a_real_but_imperfect_signal(tmp_path):
    train = make_tweet_corpus(20_000, random_state=0, path=tmp_path / "train.csv")
    test = make_tweet_corpus(5_000, random_state=1, path=tmp_path / "test.csv")
    vectorizer = make_hashing_vectorizer()
    texts, targets = read_tweets(train)
    model = Perceptron(random_state=0).fit(vectorizer.transform(texts), targets)
    texts, targets = read_tweets(test)
    accuracy = model.score(vectorizer.transform(texts), targets)
    assert 0.70 <= accuracy <= 0.95


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_samples": 0}, ValueError, "n_samples == 0"),
        ({"n_samples": 10.0}, TypeError, "10.0"),
        ({"n_samples": True}, TypeError, "True"),
        ({"n_samples": 10, "random_state": -1}, ValueError, "-1"),
        ({"n_samples": 10, "random_state": 0.5}, TypeError, "0.5"),
        ({"n_samples": 10, "path": 3}, TypeError, "3"),
    ],
)
def test_corpus_validates_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_tweet_corpus(**kwargs)


def test_corpus_keeps_its_own_file_and_refuses_any_other(tmp_path):
    path = make_tweet_corpus(50, path=tmp_path / "tweets.csv")
    before = path.read_bytes()
    # Run again (a cell re-run): the same corpus, the file is kept.
    assert make_tweet_corpus(50, path=path) == path
    assert path.read_bytes() == before
    # Another corpus at the same path: refused, file left unchanged.
    with pytest.raises(FileExistsError, match="overwrite=True"):
        make_tweet_corpus(50, random_state=1, path=path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tweets.csv"]
    # Asked for: replaced.
    make_tweet_corpus(50, random_state=1, path=path, overwrite=True)
    assert path.read_bytes() != before
    # A file of another kind: refused before any tweet is drawn.
    notes = tmp_path / "notes.csv"
    notes.write_text("name,score\n")
    with pytest.raises(FileExistsError, match="not a tweet corpus"):
        make_tweet_corpus(50, path=notes)
    assert notes.read_text() == "name,score\n"


def test_corpus_path_under_a_file_or_a_folder_is_refused(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    with pytest.raises(NotADirectoryError, match="a_file.*is a file"):
        make_tweet_corpus(5, path=a_file / "tweets.csv")
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        make_tweet_corpus(5, path=tmp_path)
    with pytest.raises(NotADirectoryError, match="a_file"):
        get_data_home(a_file)
    assert a_file.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_corpus_words_are_real_english_words(tmp_path):
    from course_lib import _tweet_words

    known = {
        word.lower()
        for words in (
            _tweet_words.FUNCTION_WORDS,
            _tweet_words.EVERYDAY_WORDS,
            _tweet_words.POSITIVE_WORDS,
            _tweet_words.NEGATIVE_WORDS,
            _tweet_words.NEGATIONS,
        )
        for word in words
    }
    texts, _ = read_tweets(make_tweet_corpus(500, path=tmp_path / "tweets.csv"))
    words = []
    for text in texts:
        text = re.sub(r"@\w+|#\w+|http://\S+", " ", text.lower())
        words += re.findall(r"[a-z']+", text)
    assert len(words) > 3000

    def is_known(word):  # "sooo": a known word, its last letter stretched
        return word in known or any(
            word[:i] in known and set(word[i:]) == {word[i - 1]} for i in range(1, len(word))
        )

    unknown = sorted({word for word in words if not is_known(word)})
    assert unknown == []
