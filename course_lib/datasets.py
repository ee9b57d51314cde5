"""Tweets to learn from: the real Sentiment140 data, or an offline look-alike.

* :func:`fetch_sentiment140` downloads the Sentiment140 archive once (1.6
  million tweets labelled by the emoticons they contained), checks its
  SHA-256 with pooch, unpacks it into a cache folder and returns the paths of
  its two CSV files.
* :func:`make_tweet_corpus` writes a tweet-like corpus in the same CSV layout,
  with no network at all. CI, and students without network, use it.

Both write into the course's data folder, :func:`get_data_home`: the
``data_home`` argument, else the ``COURSE_DATA`` environment variable, else
``~/course_data``.
"""

from __future__ import annotations

import contextlib
import csv
import datetime
import filecmp
import functools
import logging
import numbers
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from course_lib import _tweet_words as _words
from course_lib._validation import check_int

__all__ = [
    "FIELDNAMES",
    "SENTIMENT140_SHA256",
    "SENTIMENT140_URL",
    "fetch_sentiment140",
    "get_data_home",
    "make_tweet_corpus",
]

#: Columns of the Sentiment140 CSV files, which have no header row.
FIELDNAMES = ("polarity", "id", "date", "query", "user", "text")

#: Where the Sentiment140 archive is published (about 78 MiB).
SENTIMENT140_URL = "https://cs.stanford.edu/people/alecmgo/trainingandtestdata.zip"

#: SHA-256 of that archive (81,363,704 bytes), as recorded by several
#: independent projects that download it.
SENTIMENT140_SHA256 = "004a3772c8a7ff9bbfeb875880f47f0679d93fc63e5cf9cff72d54a8a6162e57"

#: Environment variables: the data folder, and a mirror of the archive.
DATA_HOME_ENV = "COURSE_DATA"
SENTIMENT140_URL_ENV = "COURSE_SENTIMENT140_URL"

_SENTIMENT140_MEMBERS = {
    "train": "training.1600000.processed.noemoticon.csv",
    "test": "testdata.manual.2009.06.14.csv",
}
_SENTIMENT140_ARCHIVE = "trainingandtestdata.zip"


def get_data_home(data_home=None):
    """Folder where the course keeps its data sets, created if needed.

    Parameters
    ----------
    data_home : str or path-like, optional
        The folder to use. Default: the ``COURSE_DATA`` environment variable,
        else ``~/course_data``.

    Returns
    -------
    pathlib.Path
        The folder, which exists.

    Examples
    --------
    >>> import tempfile
    >>> folder = get_data_home(tempfile.mkdtemp())
    >>> folder.is_dir()
    True
    """
    if data_home is None:
        data_home = os.environ.get(DATA_HOME_ENV) or Path.home() / "course_data"
    if not isinstance(data_home, (str, os.PathLike)):
        raise TypeError(
            f"data_home must be a folder path (str or path-like), but got {data_home!r} "
            f"(of type {type(data_home).__name__})."
        )
    folder = Path(data_home).expanduser()
    _check_no_file_above(folder, "data_home", data_home)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(
            f"data_home == {str(data_home)!r} is a file, not a folder: give a folder path."
        )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _check_no_file_above(path, name, value):
    """NotADirectoryError naming ``name`` if a parent of ``path`` is a file."""
    for parent in Path(path).absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(
                    f"{name} == {str(value)!r} lies under {str(parent)!r}, which is a file, "
                    f"not a folder: give a path in a folder."
                )
            return


# ---------------------------------------------------------------------------
# The real data
# ---------------------------------------------------------------------------


def fetch_sentiment140(data_home=None, *, url=None, sha256=SENTIMENT140_SHA256):
    """Download Sentiment140 once and return the paths of its CSV files.

    The archive is downloaded with pooch into ``<data_home>/sentiment140``,
    its SHA-256 checked, and its two CSV files unpacked next to it; the
    archive is then deleted. Later calls find the CSV files and use no network.
    A download that fails, whose checksum is wrong or that is not a zip
    archive with the two files leaves nothing behind: the partial archive is
    deleted, and the error says so.

    The training file has 1.6 million tweets, sorted by polarity: 800,000
    negative (0) then 800,000 positive (4), labelled by the emoticons they
    contained, which were then removed. The test file has 498 tweets labelled
    by hand, neutral ones (2) included.

    Parameters
    ----------
    data_home : str or path-like, optional
        Data folder, see :func:`get_data_home`.
    url : str, optional
        Where to download the archive from. Default: the
        ``COURSE_SENTIMENT140_URL`` environment variable (a mirror), else
        :data:`SENTIMENT140_URL`.
    sha256 : str, default=SENTIMENT140_SHA256
        Expected SHA-256 of the archive, 64 hexadecimal digits. Change it only
        for a mirror that serves different bytes.

    Returns
    -------
    train_csv, test_csv : pathlib.Path
        The training and the test CSV files, in the layout of
        :data:`FIELDNAMES`, encoded in latin-1.

    Raises
    ------
    ConnectionError
        If the archive cannot be downloaded (no network, say). The message
        says what to do; :func:`make_tweet_corpus` works offline.
    ValueError
        If the downloaded file's checksum is not ``sha256``.

    See Also
    --------
    make_tweet_corpus : a look-alike corpus that needs no network.
    course_lib.text.read_tweets : read texts and labels from these files.

    Examples
    --------
    >>> train_csv, test_csv = fetch_sentiment140()  # doctest: +SKIP
    >>> train_csv.name  # doctest: +SKIP
    'training.1600000.processed.noemoticon.csv'
    """
    url = _check_url(url)
    sha256 = _check_sha256(sha256)
    folder = get_data_home(data_home) / "sentiment140"
    paths = tuple(folder / _SENTIMENT140_MEMBERS[key] for key in ("train", "test"))
    if all(path.is_file() for path in paths):
        return paths
    archive = folder / _SENTIMENT140_ARCHIVE
    existed = folder.exists()
    try:
        _download_and_unpack(url, sha256, archive, paths)
    except BaseException:
        # Failed downloads leave nothing: the partial archive is deleted
        # (each message says so), and so is the folder if this call made it.
        if not existed:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty
        raise
    return paths


def _download_and_unpack(url, sha256, archive, paths):
    import pooch
    import requests

    folder = archive.parent
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)  # no "Downloading data from ..." on stderr
    try:
        pooch.retrieve(
            url,
            known_hash=f"sha256:{sha256}",
            fname=archive.name,
            path=folder,
            progressbar=True,
        )
    except requests.exceptions.RequestException as exc:
        archive.unlink(missing_ok=True)
        raise ConnectionError(
            f"Could not download Sentiment140 from {url} ({_short_reason(exc)}), so "
            f"nothing was written; check the network, save the archive yourself as "
            f"{archive}, set {SENTIMENT140_URL_ENV} to a mirror, or work offline with "
            f"course_lib.datasets.make_tweet_corpus(n_samples), which writes "
            f"look-alike tweets in the same layout."
        ) from exc
    except ValueError as exc:
        if "hash" not in str(exc).lower():
            raise
        raise ValueError(
            f"The file downloaded from {url} is not the Sentiment140 archive: its SHA-256 "
            f"is not {sha256}. It was deleted. If you trust this source, pass its "
            f"checksum as sha256=... ({exc})"
        ) from exc
    finally:
        logger.setLevel(level)
    try:
        _extract_members(archive, paths)
    except zipfile.BadZipFile as exc:
        raise ValueError(
            f"The file downloaded from {url} (saved as {archive}) is not a zip archive, "
            f"so it is not the Sentiment140 archive; it was deleted, and nothing was "
            f"unpacked. Check url (or {SENTIMENT140_URL_ENV}) and sha256."
        ) from exc
    finally:
        archive.unlink(missing_ok=True)


def _short_reason(exc):
    """Why a download failed, in a few words, from a ``requests`` exception."""
    import requests

    if isinstance(exc, requests.exceptions.HTTPError) and exc.response is not None:
        return f"the server answered {exc.response.status_code} {exc.response.reason}"
    if isinstance(exc, requests.exceptions.Timeout):
        return "the server did not answer in time"
    if isinstance(exc, requests.exceptions.ConnectionError):
        return "no connection to the server: no network, or the host cannot be reached"
    return type(exc).__name__


def _check_url(url):
    name = "url"
    if url is None:
        name = f"the {SENTIMENT140_URL_ENV} environment variable"
        url = os.environ.get(SENTIMENT140_URL_ENV) or SENTIMENT140_URL
    if not isinstance(url, str) or not url.startswith(("http://", "https://", "ftp://")):
        raise ValueError(f"{name} must be an http(s) or ftp URL, but got {url!r}.")
    return url


def _check_sha256(sha256):
    if not isinstance(sha256, str):
        raise TypeError(f"sha256 must be a str of 64 hexadecimal digits, but got {sha256!r}.")
    digest = sha256.lower().removeprefix("sha256:")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"sha256 must be 64 hexadecimal digits, but got {sha256!r}.")
    return digest


def _extract_members(archive, destinations):
    """Unpack files of a zip archive; each appears only once whole."""
    with zipfile.ZipFile(archive) as zipped:
        missing = [path.name for path in destinations if path.name not in zipped.namelist()]
        if missing:
            raise ValueError(
                f"The archive {str(archive)!r} has no file {missing}: it is not the "
                f"Sentiment140 archive. It was deleted, and nothing was unpacked."
            )
        for path in destinations:
            with zipped.open(path.name) as source, _atomic_file(path, "wb") as target:
                shutil.copyfileobj(source, target, length=1 << 20)


@contextlib.contextmanager
def _atomic_file(destination, mode, overwrite=True, **open_kwargs):
    """Write into a temporary file next to ``destination``, then rename it.

    Readers never see a half-written file, even when writing is interrupted.
    With ``overwrite=False``, an existing ``destination`` is kept when it has
    the very bytes written, and refused (left unchanged) when it differs.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
    try:
        with open(fd, mode, **open_kwargs) as handle:
            yield handle
        if not overwrite and destination.exists():
            if not filecmp.cmp(tmp, destination, shallow=False):
                raise FileExistsError(
                    f"path == {str(destination)!r} already holds another file, which was "
                    f"left unchanged: pass overwrite=True to replace it, or give a new path."
                )
            os.unlink(tmp)  # the same bytes are already there
            return
        os.replace(tmp, destination)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _check_csv_start(path, given):
    """FileExistsError, before any work, if ``path`` cannot be a corpus of this module."""
    with open(path, "rb") as file:
        start = file.read(5)
    if start not in (b'"0","', b'"2","', b'"4","'):
        raise FileExistsError(
            f"path == {str(given)!r} already holds a file that is not a tweet corpus "
            f"(it starts with {start!r}), which was left unchanged: pass overwrite=True "
            f"to replace it, or give a new path."
        )


# ---------------------------------------------------------------------------
# The offline look-alike
# ---------------------------------------------------------------------------

# Bump when the generator changes: cached corpora carry it in their file name.
_CORPUS_VERSION = 2
# The "language" (vocabulary, word frequencies, how each word leans) is the
# same for every random_state, so that corpora drawn with different seeds can
# train and test the same model.
_LANGUAGE_SEED = 2009


_LINK_HOSTS = ["bit.ly", "tinyurl.com", "twitpic.com", "is.gd", "ow.ly"]
_LINK_CHARS = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))
_ENDINGS = ["", "", "", "", "!", "!!", ".", "...", "?", " ..", "!!!"]


class _Language:
    """Vocabulary, word frequencies and sentiment of the synthetic tweets.

    Every word of a tweet is a real English word (:mod:`course_lib._tweet_words`);
    only user names, links and their codes are made up, as on Twitter.
    """

    n_users = 20_000
    zipf_exponent = 1.05
    # Standard deviation of how much an everyday word leans to one polarity:
    # a weak signal spread over many words, as in real tweets.
    topic_lean = 0.9

    def __init__(self, seed):
        rng = np.random.default_rng(seed)
        sentiment = set(_words.POSITIVE_WORDS) | set(_words.NEGATIVE_WORDS)
        function = list(dict.fromkeys(_words.FUNCTION_WORDS))
        everyday = [
            w
            for w in dict.fromkeys(_words.EVERYDAY_WORDS)
            if w not in sentiment and w not in function
        ]
        known = set(function) | set(everyday) | sentiment
        self.words = np.array(function + everyday, dtype=object)
        ranks = np.arange(1, len(self.words) + 1)
        zipf = 1.0 / (ranks + 2.7) ** self.zipf_exponent
        lean = rng.normal(0.0, self.topic_lean, size=len(self.words))
        lean[: len(function)] = 0.0
        self.word_cdf = {
            sign: np.cumsum(zipf * np.exp(sign * lean / 2) / np.sum(zipf * np.exp(sign * lean / 2)))
            for sign in (-1, 1)
        }
        self.sentiment_words = {
            -1: np.array(_words.NEGATIVE_WORDS, dtype=object),
            1: np.array(_words.POSITIVE_WORDS, dtype=object),
        }
        self.users = self._user_names(rng, everyday, self.n_users, exclude=known)
        user_zipf = 1.0 / np.arange(1, len(self.users) + 1) ** 0.8
        self.user_cdf = np.cumsum(user_zipf / user_zipf.sum())
        self.hashtags = np.array(["#" + w for w in everyday[:300]])

    @staticmethod
    def _user_names(rng, words, n_users, exclude):
        """``n_users`` distinct handles made of real words: "pizzalover", "green_tea22"."""
        users, seen = [], set(exclude)
        while len(users) < n_users:
            n_draws = 2 * (n_users - len(users))
            firsts = rng.choice(words, size=n_draws).tolist()
            seconds = rng.choice(words, size=n_draws).tolist()
            digits = rng.integers(0, 1000, size=n_draws).tolist()
            styles = rng.random(n_draws).tolist()
            for a, b, d, style in zip(firsts, seconds, digits, styles, strict=True):
                if a == b:
                    continue
                if style < 0.4:
                    name = f"{a}{b}{d}"
                elif style < 0.7:
                    name = f"{a}_{b}"
                else:
                    name = f"{a}{b}"
                if name not in seen:
                    seen.add(name)
                    users.append(name)
        return np.array(users[:n_users], dtype=object)


@functools.lru_cache(maxsize=1)
def _language():
    return _Language(_LANGUAGE_SEED)


def make_tweet_corpus(n_samples, *, random_state=0, path=None, overwrite=False):
    """Write an offline tweet-like corpus in Sentiment140's CSV layout.

    Each tweet mixes frequent function words, everyday words drawn from a
    Zipf-distributed vocabulary of about 800 real English words (each leaning
    slightly to one polarity), and a few sentiment-bearing words; some of those come
    from the other polarity (``"miss you"`` in a happy tweet), some negated
    (``"not happy"``), as in real tweets. Tweets also carry mentions, links,
    hashtags, stretched words (``"sooo"``) and capitals, and 6% of them read
    as the other polarity, since emoticon labels are noisy. A linear model
    learns a real but imperfect signal: a Perceptron on hashed words and word
    pairs scores about 80% on unseen tweets.

    As in the real training file, tweets are sorted by polarity: negative
    (0), then a few neutral (2, 1%), then positive (4). The vocabulary is the
    same for every ``random_state``, so corpora drawn with two seeds make a
    training and a test set.

    Parameters
    ----------
    n_samples : int
        Number of tweets (rows), at least 1.
    random_state : int, default=0
        Seed; the same seed and ``n_samples`` give the same file.
    path : str or path-like, optional
        Where to write the CSV file; its folder is created if missing.
        Default: a file in ``<data home>/tweet_corpus`` (see
        :func:`get_data_home`), written on the first call and reused
        afterwards.
    overwrite : bool, default=False
        Replace a file already at ``path`` that holds something else. Without
        it, a file with exactly the corpus asked for is kept as is (a cell
        run again), and any other file is refused and left unchanged.

    Returns
    -------
    pathlib.Path
        The CSV file: columns :data:`FIELDNAMES`, every field quoted, no
        header, latin-1.

    Raises
    ------
    FileExistsError
        If ``path`` holds another file and ``overwrite`` is False.
    IsADirectoryError, NotADirectoryError
        If ``path`` is a folder, or lies under a file.

    See Also
    --------
    fetch_sentiment140 : the real data.
    course_lib.text.read_tweets : read texts and labels from the file.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> csv_path = make_tweet_corpus(5, path=Path(tempfile.mkdtemp()) / "tweets.csv")
    >>> lines = csv_path.read_text(encoding="latin-1").splitlines()
    >>> len(lines)
    5
    >>> lines[0][:5]
    '"0","'
    """
    n_samples = check_int(n_samples, "n_samples")
    if isinstance(random_state, bool) or not isinstance(random_state, numbers.Integral):
        raise TypeError(
            f"random_state must be an int (a seed), but got {random_state!r} "
            f"(of type {type(random_state).__name__})."
        )
    if random_state < 0:
        raise ValueError(f"random_state == {random_state}, must be >= 0.")
    if path is None:
        path = (
            get_data_home()
            / "tweet_corpus"
            / f"tweets_v{_CORPUS_VERSION}_n{n_samples}_seed{int(random_state)}.csv"
        )
        if path.is_file():
            return path
    elif not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"path must be a file path (str or path-like), but got {path!r} "
            f"(of type {type(path).__name__})."
        )
    if not isinstance(overwrite, bool):
        raise TypeError(f"overwrite must be True or False, but got {overwrite!r}.")
    given, path = path, Path(path).expanduser()
    _check_no_file_above(path, "path", given)
    if path.is_dir():
        raise IsADirectoryError(
            f"path == {str(given)!r} is a folder: give a file path, e.g. "
            f"{str(path / 'tweets.csv')!r}."
        )
    rng = np.random.default_rng(random_state)
    n_neutral = int(rng.binomial(n_samples, 0.01))
    n_negative = int(rng.binomial(n_samples - n_neutral, 0.5))
    n_positive = n_samples - n_neutral - n_negative
    if path.exists() and not overwrite:
        _check_csv_start(path, given)
    with _atomic_file(path, "w", overwrite, encoding="latin-1", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n")
        for polarity, count in ((0, n_negative), (2, n_neutral), (4, n_positive)):
            # Ids and dates increase within each polarity, as in the real file.
            clock = {"id": _FIRST_ID, "seconds": 0}
            for start in range(0, count, _CHUNK):
                size = min(_CHUNK, count - start)
                writer.writerows(_tweet_rows(rng, polarity, size, clock))
    return path


# How the synthetic tweets are drawn. A Perceptron on hashed words and word
# pairs scores about 80% with these; fewer sentiment words, more misleading
# ones or more wrong labels make the task harder.
_SENTIMENT_RATE = 0.22  # share of a tweet's words that carry sentiment...
_NO_SENTIMENT = 0.12  # ...except in these tweets, which have none at all
_NEGATED = 0.15  # sentiment words of the other polarity, negated: "not happy"
_MISLEADING = 0.07  # sentiment words of the other polarity as is: "miss you"
_WRONG_LABELS = 0.06  # tweets that read as the other polarity than their label
_STRETCHED = 0.02  # words stretched: "sooo"
_MENTION, _HASHTAG, _LINK, _UPPER, _CAPITALIZED = 0.35, 0.05, 0.08, 0.04, 0.31

# Tweets are generated and written by chunks: memory stays flat for any size.
_CHUNK = 20_000
_FIRST_ID = 1_467_810_369
_FIRST_DATE = datetime.datetime(2009, 4, 6, 22, 19, 45)


def _tweet_rows(rng, polarity, n_rows, clock):
    """CSV rows of ``n_rows`` tweets; ``clock`` holds the last id and date."""
    texts = _tweet_texts(rng, polarity, n_rows)
    steps = rng.integers(1, 400, size=n_rows)
    ids = clock["id"] + np.cumsum(steps)
    seconds = clock["seconds"] + np.cumsum(steps // 10)
    clock["id"], clock["seconds"] = int(ids[-1]), int(seconds[-1])
    lang = _language()
    users = lang.users[np.searchsorted(lang.user_cdf, rng.random(n_rows))].tolist()
    columns = ([polarity] * n_rows, ids.tolist(), _format_dates(seconds), users, texts)
    return (
        (label, tweet_id, date, "NO_QUERY", user, text)
        for label, tweet_id, date, user, text in zip(*columns, strict=True)
    )


def _format_dates(seconds):
    """Dates like ``"Mon Apr 06 22:19:45 PDT 2009"``, ``seconds`` after the first."""
    first_day = _FIRST_DATE.replace(hour=0, minute=0, second=0)
    days, in_day = np.divmod(seconds + (_FIRST_DATE - first_day).seconds, 86_400)
    hours, in_hour = np.divmod(in_day, 3600)
    minutes, secs = np.divmod(in_hour, 60)
    day_names = {
        day: (first_day + datetime.timedelta(days=day)).strftime("%a %b %d")
        for day in np.unique(days).tolist()
    }
    columns = (days.tolist(), hours.tolist(), minutes.tolist(), secs.tolist())
    return [
        f"{day_names[d]} {h:02d}:{m:02d}:{s:02d} PDT {_FIRST_DATE.year}"
        for d, h, m, s in zip(*columns, strict=True)
    ]


def _tweet_texts(rng, polarity, n_tweets):
    """Texts of ``n_tweets`` tweets of one polarity (0, 2 or 4)."""
    lang = _language()
    lengths = np.clip(rng.poisson(10, size=n_tweets) + 2, 2, 30)
    n_tokens = int(lengths.sum())
    # Which words carry sentiment, and the polarity each word is drawn from.
    sentiment_rate = np.where(rng.random(n_tweets) < _NO_SENTIMENT, 0.0, _SENTIMENT_RATE)
    is_sentiment = rng.random(n_tokens) < np.repeat(sentiment_rate, lengths)
    if polarity == 2:
        word_sign = rng.choice([-1, 1], size=n_tokens)
    else:
        sign = -1 if polarity == 0 else 1
        tweet_sign = np.where(rng.random(n_tweets) < _WRONG_LABELS, -sign, sign)
        word_sign = np.repeat(tweet_sign, lengths)
    tokens = np.empty(n_tokens, dtype=object)
    for s in (-1, 1):
        topic = ~is_sentiment & (word_sign == s)
        tokens[topic] = lang.words[np.searchsorted(lang.word_cdf[s], rng.random(topic.sum()))]
        sentiment = is_sentiment & (word_sign == s)
        tokens[sentiment] = _sentiment_tokens(rng, s, int(sentiment.sum()))
    for i in np.flatnonzero(rng.random(n_tokens) < _STRETCHED).tolist():
        tokens[i] += tokens[i][-1] * int(rng.integers(2, 5))
    tokens = tokens.tolist()

    # Decorations: mentions, hashtags, links, capitals, end punctuation.
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).tolist()
    draws = rng.random((n_tweets, 4)).tolist()
    endings = rng.choice(_ENDINGS, size=n_tweets).tolist()
    mentions = lang.users[np.searchsorted(lang.user_cdf, rng.random(n_tweets))].tolist()
    hashtags = rng.choice(lang.hashtags, size=n_tweets).tolist()
    links = _random_links(rng, n_tweets)
    texts = []
    for i, (start, length) in enumerate(zip(starts, lengths.tolist(), strict=True)):
        text = " ".join(tokens[start : start + length]) + endings[i]
        mention, tag, link, case = draws[i]
        if mention < _MENTION:
            text = f"@{mentions[i]} {text}"
        if tag < _HASHTAG:
            text = f"{text} {hashtags[i]}"
        if link < _LINK:
            text = f"{text} {links[i]}"
        if case < _UPPER:
            text = text.upper()
        elif case < _UPPER + _CAPITALIZED:
            text = text[:1].upper() + text[1:]
        texts.append(text)
    return texts


def _sentiment_tokens(rng, sign, n_tokens):
    """Sentiment words for tweets of polarity ``sign``, some of them misleading."""
    own, other = _language().sentiment_words[sign], _language().sentiment_words[-sign]
    tokens = own[rng.integers(0, len(own), size=n_tokens)]
    kind = rng.random(n_tokens)
    negated = kind < _NEGATED
    misleading = (kind >= _NEGATED) & (kind < _NEGATED + _MISLEADING)
    negations = rng.choice(_words.NEGATIONS, size=int(negated.sum())).astype(object)
    tokens[negated] = negations + " " + other[rng.integers(0, len(other), size=negated.sum())]
    tokens[misleading] = other[rng.integers(0, len(other), size=misleading.sum())]
    return tokens


def _random_links(rng, n_links):
    codes = rng.choice(_LINK_CHARS, size=(n_links, 6)).tolist()
    hosts = rng.choice(_LINK_HOSTS, size=n_links).tolist()
    return [f"http://{host}/{''.join(code)}" for host, code in zip(hosts, codes, strict=True)]
