"""Tweets to learn from: the real Sentiment140 data, or an offline look-alike.

* :func:`fetch_sentiment140` downloads the Sentiment140 archive once (1.6
  million tweets labelled by the emoticons they contained), checks its
  SHA-256 with pooch, unpacks it into a cache folder and returns the paths of
  its two CSV files.
* :func:`make_tweet_corpus` writes a tweet-like corpus in the same CSV layout,
  with no network at all. CI, and students without network, use it; how the
  tweets are drawn is :mod:`course_lib._tweet_corpus`.

Both write into the course's data folder, :func:`get_data_home`: the
``data_home`` argument, else the ``COURSE_DATA`` environment variable, else
``~/course_data``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import zipfile
from pathlib import Path

from course_lib import _tweet_corpus as _corpus
from course_lib._files import atomic_file
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
            with zipped.open(path.name) as source, atomic_file(path, "wb") as target:
                shutil.copyfileobj(source, target, length=1 << 20)


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
    random_state = check_int(random_state, "random_state", minimum=0)
    if path is None:
        path = (
            get_data_home()
            / "tweet_corpus"
            / f"tweets_v{_corpus.VERSION}_n{n_samples}_seed{int(random_state)}.csv"
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
    if path.exists() and not overwrite:
        _check_csv_start(path, given)
    with atomic_file(path, "w", overwrite=overwrite, encoding="latin-1", newline="") as handle:
        _corpus.write_tweets(handle, n_samples, random_state)
    return path
