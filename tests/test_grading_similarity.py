"""The class similarity report: copied pairs and answers close to the solutions, listed."""

import csv

import nbformat
import pytest

from course_lib.grading.similarity import SOLUTIONS, similarity_report

STUB = '''def top_scores(results, n):
    """The n best (score, params) of `results`, best first."""
    raise NotImplementedError()
'''
SOLUTION = '''def top_scores(results, n):
    """The n best (score, params) of `results`, best first."""
    ### BEGIN SOLUTION
    ranked = sorted(results, key=lambda item: item[0], reverse=True)
    return [(score, params) for score, params in ranked[:n]]
    ### END SOLUTION
'''
OWN = '''def top_scores(results, n):
    """The n best (score, params) of `results`, best first."""
    best = []
    for score, params in results:
        best.append((score, params))
        best.sort(key=lambda pair: -pair[0])
        if len(best) > n:
            best.pop()
    return best
'''
# OWN with every name changed, other comments and spacing: the same answer.
COPIED = '''def top_scores(results, n):
    """The n best (score, params) of `results`, best first."""
    # keep the best ones
    kept = []
    for s, p in results:
        kept.append( (s, p) )
        kept.sort(key=lambda x: -x[0])

        if len(kept) > n:
            kept.pop()
    return kept
'''
DIFFERENT = '''def top_scores(results, n):
    """The n best (score, params) of `results`, best first."""
    import heapq

    return heapq.nlargest(n, results, key=lambda entry: entry[0])
'''
QUIZ = 'answer = ...\nquiz.check(answer, "l0-quiz")\n'


def _notebook(path, answer, quiz=QUIZ):
    meta = {"solution": True, "grade": False, "locked": False, "schema_version": 3}
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("Write `top_scores`."),
        nbformat.v4.new_code_cell(answer, metadata={"nbgrader": {**meta, "grade_id": "ex-top"}}),
        nbformat.v4.new_code_cell(quiz, metadata={"nbgrader": {**meta, "grade_id": "quiz-a"}}),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))


@pytest.fixture
def course(tmp_path):
    root = tmp_path / "course"
    _notebook(root / "solutions" / "01_top" / "01_top.ipynb", SOLUTION, "answer = 3\n")
    _notebook(root / "lessons" / "01_top" / "01_top.ipynb", STUB)
    submissions = tmp_path / "submitted"
    answers = {
        "ada": OWN,
        "bob": COPIED,
        "cy": DIFFERENT,
        "dee": STUB,  # untouched: never a match, however many hand it in
        "eve": STUB,
        "fay": SOLUTION.replace("ranked", "ordered"),
    }
    for student, answer in answers.items():
        # Everyone answers the quiz alike: quizzes have one answer and are not compared.
        _notebook(submissions / student / "01_top" / "01_top.ipynb", answer, "answer = 3\n")
    return root, submissions


def test_a_copied_pair_and_a_copy_of_the_solutions_are_listed_and_nothing_else(course, tmp_path):
    root, submissions = course
    report = similarity_report(submissions, root)
    found = {(m.kind, m.cell, m.first, m.second) for m in report.matches}
    assert found == {
        ("pair", "ex-top", "ada", "bob"),
        ("solutions", "ex-top", "fay", SOLUTIONS),
    }
    assert report.answers == 4  # dee's and eve's untouched cells are no answers
    pair = next(m for m in report.matches if m.kind == "pair")
    assert min(pair.first_share, pair.second_share) >= report.threshold

    report.write_csv(tmp_path / "similarity.csv")
    with open(tmp_path / "similarity.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["kind"], r["first"], r["second"]) for r in rows] == [
        ("pair", "ada", "bob"),
        ("solutions", "fay", SOLUTIONS),
    ]
    report.write_html(tmp_path / "similarity.html")
    page = (tmp_path / "similarity.html").read_text()
    assert "no score changes" in page
    assert "kept.append( (s, p) )" in page  # both answers shown, escaped
    assert "<script" not in page


def test_the_report_changes_no_file_of_the_class(course):
    root, submissions = course
    before = {p: p.read_bytes() for p in sorted(submissions.rglob("*")) if p.is_file()}
    similarity_report(submissions, root)
    after = {p: p.read_bytes() for p in sorted(submissions.rglob("*")) if p.is_file()}
    assert before == after


@pytest.mark.parametrize("threshold", [0, 1.5, "high"])
def test_a_bad_threshold_is_refused_naming_it(course, threshold):
    root, submissions = course
    with pytest.raises(ValueError, match=f"threshold == {threshold!r}"):
        similarity_report(submissions, root, threshold=threshold)


def test_an_unknown_lesson_is_refused(course):
    root, submissions = course
    with pytest.raises(ValueError, match="unknown lesson"):
        similarity_report(submissions, root, lessons=["09_nothing"])
