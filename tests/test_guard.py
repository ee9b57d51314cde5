"""The run-time guard, in a real kernel: what static reading cannot see is recorded."""

import json
import secrets

import nbformat
import pytest
from nbclient import NotebookClient

from course_lib.guard import RECORD_VARIABLE, SECRET_VARIABLE, cell_digest, read_record, sign

# (cell source, label, the reason it must leave; None: a test cell, checked before it runs)
ATTACKS = [
    ("import math\nimport numpy\nfrom course_lib import quiz", "setup", None),
    (
        "_m = __import__('course_lib.quiz', fromlist=['x'])\n"
        "setattr(_m, 'is_' + 'correct', lambda *a: True)",
        "ex-a",
        None,
    ),
    ("pass  # test-a", "test-a", "course_lib.quiz.is_correct was replaced"),
    ("exec(''.join(['import nu', 'mpy; numpy.array_equal = lambda a, b: True']))", "ex-b", None),
    ("pass  # test-b", "test-b", "numpy.array_equal was replaced"),
    (
        "import ast\n\nclass _Wrap(ast.NodeTransformer):\n    pass\n\n"
        "getattr(get_ipython(), 'ast_' + 'transformers').append(_Wrap())",
        "ex-c",
        None,
    ),
    ("pass  # test-c", "test-c", "_Wrap was added to the IPython shell's ast_transformers"),
    (
        "def _quiet(*args, **kwargs):\n    pass\n\n"
        "getattr(get_ipython(), 'set_' + 'custom_exc')((AssertionError,), _quiet)",
        "ex-d",
        None,
    ),
    ("pass  # test-d", "test-d", "a custom exception handler was installed"),
    (
        "import sys\n\ndef _tracer(*args):\n    return None\n\n"
        "getattr(sys, 'set' + 'profile')(_tracer)",
        "ex-e",
        None,
    ),
    ("pass  # test-e", "test-e", "a trace or profile function is set"),
    (
        "class _Yes:\n    def __eq__(self, other):\n        return True\n\nanswer_x = _Yes()",
        "ex-f",
        None,
    ),
    (
        "pass",
        "test-f",
        "answer_x is an object of the notebook's own class _Yes, which overrides __eq__",
    ),
    ("globals()['l' + 'en'] = lambda x: 0", "ex-g", None),
    ("pass  # test-g", "test-g", "the notebook's len hides the builtin"),
    (
        "import sys\nsys.setprofile(None)\n"
        "get_ipython().events.unregister('pre_run_cell', get_ipython()._course_guard.before_cell)",
        "ex-h",
        None,
    ),
    ("pass  # test-h", "test-h", None),
]

ORDINARY = [
    "%matplotlib inline\nimport matplotlib.pyplot as plt\nimport numpy as np",
    "fig, ax = plt.subplots()\nax.plot(np.arange(3))\nplt.show()",
    "class Box:\n    def __eq__(self, other):\n        return True\n\nbox = Box()\nbox.size = 2",
    "import warnings\nwarnings.warn('a warning', RuntimeWarning)",
    "from course_lib import quiz\nquiz.check(3, quiz.key('q', 3))",
]


def _run(sources, tmp_path, monkeypatch):
    """Execute cells in a real kernel with the guard loaded; return the notebook and record."""
    secret = secrets.token_hex(16)
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret)
    record = tmp_path / "record.jsonl"
    monkeypatch.setenv(RECORD_VARIABLE, str(record))
    monkeypatch.setenv(SECRET_VARIABLE, str(secret_file))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path)}},
        extra_arguments=["--InteractiveShellApp.extensions=course_lib.guard"],
    ).execute()
    assert not secret_file.exists(), "the guard must delete the secret once read"
    return nb, record, secret


@pytest.mark.timeout(300)
def test_each_run_time_change_is_recorded_before_the_next_test_cell(tmp_path, monkeypatch):
    nb, record, secret = _run([s for s, _, _ in ATTACKS], tmp_path, monkeypatch)
    tests = {label: source for source, label, _ in ATTACKS if label.startswith("test-")}
    reasons = read_record(record, secret, tests)
    for _, label, reason in ATTACKS:
        if reason is not None:
            expected = f"before cell {label}, at run time: {reason}"
            assert any(r.startswith(expected) for r in reasons), (label, reasons)
    assert reasons[-1] == "the run-time check was removed: cell(s) test-h ran unchecked"
    # Each change is reported once, at the first test cell after it.
    assert len(reasons) == len(set(reasons))


@pytest.mark.timeout(300)
def test_ordinary_code_leaves_a_clean_signed_record(tmp_path, monkeypatch):
    nb, record, secret = _run(ORDINARY, tmp_path, monkeypatch)
    assert all(o.get("output_type") != "error" for c in nb.cells for o in c.outputs)
    lines = record.read_text().splitlines()
    assert len(lines) == len(ORDINARY)
    assert read_record(record, secret, {str(i): s for i, s in enumerate(ORDINARY)}) == []


def test_a_forged_or_missing_record_is_a_reason(tmp_path):
    record = tmp_path / "record.jsonl"
    assert read_record(record, "k", {}) == []
    assert read_record(record, "k", {"test-a": "assert a"}) == [
        "the run-time check left no record: it was removed or never ran"
    ]
    record.write_text(
        sign("k", {"cell": cell_digest("x = 1"), "problems": []})
        + "\n"
        + json.dumps({"entry": {"cell": cell_digest("assert a"), "problems": []}, "mac": "0" * 64})
        + "\n"
    )
    assert read_record(record, "k", {"test-a": "assert a"}) == [
        "the record of the run-time check was tampered with (line 2 is not signed by grading)"
    ]


def test_without_a_secret_the_extension_does_nothing(tmp_path, monkeypatch):
    from course_lib.guard import load_ipython_extension

    monkeypatch.delenv(RECORD_VARIABLE, raising=False)
    monkeypatch.delenv(SECRET_VARIABLE, raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    assert load_ipython_extension(object()) is None  # no secret file: nothing to do
    assert list(tmp_path.iterdir()) == []
