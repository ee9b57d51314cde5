"""One element of a Slurm grading run: a grader that claims items until none is left.

``python -m course_lib.grading._slurm_element RUN KEY on|off`` (the sandbox) runs on a
compute node
(the batch script of :class:`course_lib.grading.slurm.Slurm` starts it, ``KEY``
being ``<array job>_<index>``). It pays its start-up once (Python, these
imports, one grading worker that imports nbgrader), copies each lesson and the
template gradebook once to the node's local disk (``$TMPDIR``), then claims
item after item (:func:`claim_next`), grades each as on one host
(:func:`course_lib.grading.autograde.grade_one`) and publishes its fragment as
``fragments/<item>/`` of the run folder with one rename. SIGTERM (``scancel``,
preemption) stops what the item started; the instructor's side then releases
the item for another element.

Examples
--------
>>> import tempfile
>>> run = Path(tempfile.mkdtemp())
>>> (run / CLAIMS).mkdir()
>>> claim_next(run, "7_0", 2), claim_next(run, "7_1", 2), claim_next(run, "7_0", 2)
(0, 1, None)
>>> read_claims(run)
{0: '7_0', 1: '7_1'}
>>> shutil.rmtree(run)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import signal
import sys
import time
from pathlib import Path

__all__ = ["CLAIMS", "FRAGMENTS", "claim_next", "read_claims", "run_element"]

FRAGMENTS = "fragments"
CLAIMS = "claims"
#: Folders of the run folder: a course root of the lessons, and their releases.
COURSE = "course"
RELEASES = "releases"
#: The run's notebooks, written last: the elements wait for it.
TASKS = "tasks.json"
#: Seconds an element waits for ``tasks.json`` (the lessons are being prepared).
TASKS_WAIT = 600.0
#: Seconds of an element's time limit kept free beyond a task limit: an element
#: claims another item only while this much more than a task limit is left.
CLAIM_MARGIN = 60.0


def read_claims(run, released=False):
    """``{item: element key}`` of the run's live claims; with ``released``, a list
    of ``(item, element key)`` of every claim, released ones too."""
    found = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(Path(run) / CLAIMS):
            name = entry.name.split(".")
            if not name[0].isdigit() or (len(name) > 1 and not released):
                continue
            with contextlib.suppress(OSError):
                found.append((int(name[0]), Path(entry.path).read_text().strip()))
    return sorted(found) if released else dict(found)


def claim_next(run, key, count):
    """Claim the first of the run's ``count`` items that no element has claimed.

    The claim is a hard link ``claims/<item>`` to this element's token file: one
    ``link``, which fails when another element got there first (atomic on NFS
    too). Returns the item, or None when every item is claimed.
    """
    claims = Path(run) / CLAIMS
    token = claims / f".{key}.token"
    if not token.exists():
        token.write_text(key)
    while True:
        taken = {int(n) for n in os.listdir(claims) if n.isdigit()}
        free = [i for i in range(count) if i not in taken]
        if not free:
            return None
        for index in free:
            with contextlib.suppress(FileExistsError):
                os.link(token, claims / str(index))
                return index


def _outcome_json(outcome, fragment):
    data = dataclasses.asdict(outcome)
    for key in ("autograded", "feedback", "log"):
        data[key] = None if data[key] is None else str(Path(data[key]).relative_to(fragment))
    return data


def _say(line):
    """A line of this element's log (its Slurm output file)."""
    print(line, flush=True)


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _local_lessons(run, workspace, lessons):
    """``{lesson: PreparedLesson}``: the run's lessons, copied once to this node's disk."""
    from course_lib.grading.layout import SOURCE_DIR, PreparedLesson

    local = workspace.new_dir("lessons")
    shutil.copytree(run / COURSE, local / COURSE)
    shutil.copytree(run / RELEASES, local / RELEASES)
    return {
        name: PreparedLesson(
            name, local / COURSE / SOURCE_DIR / name, local / RELEASES / name, notebooks
        )
        for name, notebooks in lessons.items()
    }


def _grade_item(run, spec, index, workspace, template_db, lessons):
    """Grade item ``index`` on this node's disk and publish its fragment."""
    from course_lib.grading.autograde import grade_one
    from course_lib.grading.runner import AUDIT_DIR

    entry = spec["tasks"][index]
    name = entry["lesson"]
    lesson = lessons[name]
    job = os.environ.get("SLURM_JOB_ID", str(os.getpid()))
    staging = run / FRAGMENTS / f".{index}.{job}.tmp"
    local = workspace.new_dir("item")
    info = None
    try:
        shutil.copytree(run / "submissions" / str(index), local / name)
        outcome, info = grade_one(
            workspace,
            lesson,
            entry["student"],
            local / name,
            template_db,
            timeout=spec["timeout"],
            task_timeout=spec["task_timeout"],
        )
        staging.mkdir()
        for key in ("autograded", "feedback"):
            source = getattr(outcome, key)
            if source is not None:
                shutil.copytree(source, staging / key)
                setattr(outcome, key, staging / key)
        if outcome.log is not None:
            shutil.copy(outcome.log, staging / "nbgrader.log")
            outcome.log = staging / "nbgrader.log"
        survivors = []
        if info is not None:
            shutil.copy(info["db"], staging / "gradebook.db")
            if (info["root"] / AUDIT_DIR).is_dir():
                shutil.copytree(info["root"] / AUDIT_DIR, staging / AUDIT_DIR)
            survivors = info["survivors"]
        data = _outcome_json(outcome, staging)
        data["survivors"] = survivors
        (staging / "outcome.json").write_text(json.dumps(data, indent=1))
        with contextlib.suppress(OSError):  # a twin element got there first: keep its fragment
            os.rename(staging, run / FRAGMENTS / str(index))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not workspace.keep:  # this element's disk holds one item at a time
            shutil.rmtree(local, ignore_errors=True)
            if info is not None:
                shutil.rmtree(info["root"], ignore_errors=True)


def _wait_for_tasks(run, deadline):
    """The run's ``tasks.json``, once written; None when the run folder went away
    (the run ended before any notebook was handed out) or ``deadline`` passed."""
    while time.monotonic() < deadline and run.is_dir():
        with contextlib.suppress(FileNotFoundError):
            return json.loads((run / TASKS).read_text())
        time.sleep(0.2)
    return None


def run_element(run, key, sandbox=True):
    """Be element ``key`` of the run folder ``run``, sandbox on or off.

    It starts up (imports, a grading worker) while the instructor's side prepares
    the lessons, then claims and grades items until none is left (or a task limit
    is no longer left of this element's time).
    """
    started = time.monotonic()
    from course_lib.grading.autograde import grade_one  # noqa: F401 (imported once, now)
    from course_lib.grading.runner import Workspace

    run = Path(run)
    workspace = Workspace(sandbox=sandbox, parent=os.environ.get("TMPDIR"))
    warming = workspace.pool.warm()  # nbgrader's imports, while the lessons are prepared
    graded = 0
    try:
        spec = _wait_for_tasks(run, started + TASKS_WAIT)
        if spec is None:
            _say(f"element {key}: no notebooks were handed out")
            return 0
        budget = spec.get("element_seconds")
        last_claim = math.inf if budget is None else started + budget - (spec["task_timeout"] or 0)
        template_db = workspace.path / "template.db"
        shutil.copy(run / "template.db", template_db)
        lessons = _local_lessons(run, workspace, spec["lessons"])
        warming.join()
        _say(f"element {key}: ready in {time.monotonic() - started:.1f} s")
        while graded == 0 or time.monotonic() + CLAIM_MARGIN < last_claim:
            index = claim_next(run, key, len(spec["tasks"]))
            if index is None:
                break
            begun = time.monotonic()
            _grade_item(run, spec, index, workspace, template_db, lessons)
            graded += 1
            _say(f"element {key}: item {index} in {time.monotonic() - begun:.1f} s")
        _say(f"element {key}: {graded} item(s) in {time.monotonic() - started:.1f} s")
        return 0
    finally:
        with contextlib.suppress(OSError):
            (run / CLAIMS / f".{key}.token").unlink()
        workspace.kill_all()
        workspace.cleanup()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3 or argv[2] not in ("on", "off"):
        raise SystemExit("usage: python -m course_lib.grading._slurm_element RUN KEY on|off")
    signal.signal(signal.SIGTERM, _on_sigterm)  # scancel: stop what the task started
    return run_element(argv[0], argv[1], sandbox=argv[2] == "on")


if __name__ == "__main__":
    sys.exit(main())
