"""Text at scale: one model on all the tweets against E partition models averaged.

On a corpus from ``make_tweet_corpus`` (``--size`` tweets, and a test corpus
drawn with another seed), in one run:

1. one linear model trained in this process on every tweet, against E models
   trained at once on E engines, one per partition of the file, then
   averaged. Both ways do the same work per tweet (read the CSV file,
   vectorize, fit) with the same code, ``course_lib.averaging.fit_partition``;
   wall times include reading the file, and for the engines the round trip
   of tasks and models; best of ``--repeat`` runs, the two ways alternating.
   Accuracies are on the test corpus.
2. ``HashingVectorizer`` against ``TfidfVectorizer(use_idf=False)`` with the
   same n-grams, on ``--vectorizer-size`` of the training tweets: time to turn
   them into features (fit and transform for the vocabulary), peak memory
   while doing it (tracemalloc, in a second pass), and the size of the
   pickled vectorizer, which is what every engine would be sent.

The last line is the headline: accuracy points of the average minus the
single model, and the speed-up of the engines over the single process.

    python bench/text_scaling.py --size 100000 --engines 2
"""

import argparse
import functools
import gc
import pickle
import tempfile
import time
import tracemalloc
from pathlib import Path

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import Perceptron, SGDClassifier

from course_lib.averaging import average_linear_models, fit_partition, train_on_partitions
from course_lib.cluster import local_cluster
from course_lib.datasets import make_tweet_corpus
from course_lib.text import make_hashing_vectorizer, read_tweets

MODELS = {
    "sgd": functools.partial(SGDClassifier, random_state=0),
    "perceptron": functools.partial(Perceptron, random_state=0),
}


def _warm_up():
    """Import on an engine what its task needs, so imports are not timed."""
    import sklearn.linear_model  # noqa: F401

    import course_lib.averaging  # noqa: F401

    return True


def compare_training(client, train_csv, X_test, y_test, make_model, vectorizer, repeat):
    n_engines = len(client.ids)
    view = client.load_balanced_view()
    client[:].apply_sync(_warm_up)

    single_times, parallel_times = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        single = fit_partition(train_csv, 1, 0, make_model, vectorizer)
        single_times.append(time.perf_counter() - start)
        gc.collect()
        start = time.perf_counter()
        models = train_on_partitions(view, train_csv, n_engines, make_model, vectorizer)
        average = average_linear_models(models)
        parallel_times.append(time.perf_counter() - start)

    scores = [m.score(X_test, y_test) for m in models]
    return {
        "single_s": min(single_times),
        "parallel_s": min(parallel_times),
        "single_acc": single.score(X_test, y_test),
        "average_acc": average.score(X_test, y_test),
        "partition_acc": scores,
    }


def _peak_mib(function):
    gc.collect()
    tracemalloc.start()
    try:
        function()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def compare_vectorizers(texts):
    hashing = make_hashing_vectorizer()
    vocabulary = TfidfVectorizer(use_idf=False, ngram_range=hashing.ngram_range)
    rows = []
    for name, vectorizer, run in (
        ("HashingVectorizer", hashing, lambda: hashing.transform(texts)),
        ("TfidfVectorizer(use_idf=False)", vocabulary, lambda: vocabulary.fit_transform(texts)),
    ):
        start = time.perf_counter()
        X = run()
        seconds = time.perf_counter() - start
        del X
        peak = _peak_mib(run)
        pickled = len(pickle.dumps(vectorizer)) / 2**10
        rows.append((name, seconds, peak, pickled))
    return rows, len(vocabulary.vocabulary_)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="training tweets")
    parser.add_argument("--engines", type=int, default=2, help="engines E")
    parser.add_argument("--test-size", type=int, default=20_000, help="test tweets")
    parser.add_argument("--model", choices=sorted(MODELS), default="sgd")
    parser.add_argument(
        "--vectorizer-size", type=int, default=50_000, help="tweets for the vectorizer part"
    )
    parser.add_argument("--repeat", type=int, default=2, help="timings: best of this many")
    args = parser.parse_args()
    make_model = MODELS[args.model]
    vectorizer = make_hashing_vectorizer()

    with tempfile.TemporaryDirectory(prefix="text-scaling-") as folder:
        start = time.perf_counter()
        train_csv = make_tweet_corpus(args.size, random_state=0, path=Path(folder) / "train.csv")
        test_csv = make_tweet_corpus(args.test_size, random_state=1, path=Path(folder) / "test.csv")
        print(
            f"corpus: {args.size} training + {args.test_size} test tweets, "
            f"{train_csv.stat().st_size / 2**20:.1f} MiB, written in "
            f"{time.perf_counter() - start:.1f} s"
        )
        texts, y_test = read_tweets(test_csv)
        X_test = vectorizer.transform(texts)

        with local_cluster(args.engines, progress=False) as client:
            result = compare_training(
                client, train_csv, X_test, y_test, make_model, vectorizer, args.repeat
            )
        speedup = result["single_s"] / result["parallel_s"]
        print(f"\n{args.model}: one model on all the data vs {args.engines} partitions averaged")
        print(f"  {'':28} {'wall s':>8} {'accuracy':>9}")
        print(f"  {'single process':28} {result['single_s']:8.2f} {result['single_acc']:9.4f}")
        print(
            f"  {f'{args.engines} engines, averaged':28} {result['parallel_s']:8.2f} "
            f"{result['average_acc']:9.4f}"
        )
        partition_scores = ", ".join(f"{s:.4f}" for s in result["partition_acc"])
        print(f"  each partition's model: {partition_scores}")

        texts, _ = read_tweets(train_csv)
        texts = texts[:: max(1, len(texts) // args.vectorizer_size)][: args.vectorizer_size]
        rows, vocabulary_size = compare_vectorizers(texts)
    print(f"\nvectorizers on {len(texts)} tweets, words and word pairs")
    print(f"  {'':32} {'seconds':>8} {'peak MiB':>9} {'pickled KiB':>12}")
    for name, seconds, peak, pickled in rows:
        print(f"  {name:32} {seconds:8.2f} {peak:9.1f} {pickled:12.1f}")
    print(f"  vocabulary: {vocabulary_size} entries; hashing: {vectorizer.n_features} columns")
    (_, hash_s, hash_mib, hash_pkl), (_, tfidf_s, tfidf_mib, tfidf_pkl) = rows
    print(
        f"  TfidfVectorizer / HashingVectorizer: time {tfidf_s / hash_s:.1f}x, "
        f"memory {tfidf_mib / hash_mib:.1f}x, pickled {tfidf_pkl / hash_pkl:.0f}x"
    )

    points = round(100 * (result["average_acc"] - result["single_acc"]), 1) + 0.0  # no "-0.0"
    print(
        f"averaged - single = {points:.1f} pts, speedup = {speedup:.1f} on {args.engines} engines"
    )


if __name__ == "__main__":
    main()
