"""The offline look-alike of Sentiment140: how the synthetic tweets are drawn.

:func:`write_tweets` writes ``n_samples`` rows in Sentiment140's CSV layout
to an open file; :func:`course_lib.datasets.make_tweet_corpus` (the public
function) checks its input, picks the file and writes it atomically.
"""

from __future__ import annotations

import csv
import datetime
import functools

import numpy as np

from course_lib import _tweet_words as _words

# Bump when the generator changes: cached corpora carry it in their file name.
VERSION = 2
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


def write_tweets(handle, n_samples, random_state):
    """Write ``n_samples`` tweet rows (quoted CSV, sorted by polarity) to ``handle``.

    As in the real training file: negative (0), a few neutral (2, 1%), then
    positive (4), with ids and dates increasing within each polarity.

    >>> import io
    >>> out = io.StringIO()
    >>> write_tweets(out, 3, 0)
    >>> len(out.getvalue().splitlines())
    3
    """
    rng = np.random.default_rng(random_state)
    n_neutral = int(rng.binomial(n_samples, 0.01))
    n_negative = int(rng.binomial(n_samples - n_neutral, 0.5))
    n_positive = n_samples - n_neutral - n_negative
    writer = csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n")
    for polarity, count in ((0, n_negative), (2, n_neutral), (4, n_positive)):
        clock = {"id": _FIRST_ID, "seconds": 0}
        for start in range(0, count, _CHUNK):
            size = min(_CHUNK, count - start)
            writer.writerows(_tweet_rows(rng, polarity, size, clock))


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
