"""Grading a class through Slurm: one job array of long-lived graders.

The instructor's side (:class:`Slurm`, the ``slurm`` place of
:mod:`course_lib.grading.placement`) writes a run folder into a folder that
both it and the compute nodes see (``shared``): the prepared lessons, the
template gradebook, each submission (an *item*: one student's lesson),
``tasks.json`` and the batch script; then one ``sbatch --array=0-(E-1)``.
Each of the E elements (:mod:`course_lib.grading._slurm_element`, ``python -m
course_lib.grading._slurm_element RUN KEY on|off``) is a grader that pays its start-up once
(Python, nbgrader's imports, the grading worker) and then claims item after
item until none is left: a claim is a hard link ``claims/<item>`` made with one
atomic ``link`` (it fails when another element got there first), so a slow
notebook holds up only its own element, never the rest. Each item is graded in
a workspace on the node's local disk (``$TMPDIR``), sandboxed as on one host
(:func:`course_lib.grading.autograde.grade_one`, whose own retries handle what
fails inside), and its fragment (outcome, task gradebook, autograded notebook,
feedback, log) is published as ``fragments/<item>/`` with one rename.

The instructor's side merges each fragment as it appears, prints the progress
(done, being graded, waiting), and, when an element leaves the queue (node
lost, preempted, cancelled by ``scancel``), releases the items it had claimed
but not finished, so that they are graded again, and submits a replacement
element when fewer than E are left for the items still unclaimed. Finished
items are never graded again, and an item is never released for its student's
doing: whatever the student's code does ends in a fragment. Ctrl-C cancels the
array (``scancel``), waits for it to leave the queue and says what was merged.

Settings, from ``nbgrader_config.py`` (``c.SlurmGrading.partition = "cpu"``
...) or the command line (which wins): ``shared``, ``partition``,
``account``, ``time``, ``mem``, ``cpus_per_task``, ``python``, ``elements``.

Examples
--------
>>> Slurm(shared=None).settings["cpus_per_task"]
1
>>> element_count(1400, None), element_count(1400, 320), element_count(3, 8)
(175, 320, 3)
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from course_lib.grading._slurm_element import (
    CLAIMS,
    COURSE,
    FRAGMENTS,
    RELEASES,
    TASKS,
    read_claims,
)

__all__ = ["Slurm", "SlurmError", "element_count", "slurm_seconds"]

#: Client commands the instructor's side needs.
COMMANDS = ("sbatch", "squeue", "scancel", "sinfo")
#: What can be set in ``nbgrader_config.py`` as ``c.SlurmGrading.<name>``.
SETTINGS = (
    "shared",
    "partition",
    "account",
    "time",
    "mem",
    "cpus_per_task",
    "python",
    "elements",
)
#: Times an item whose element left the queue before finishing it is released again.
MAX_RESUBMITS = 3
#: Items per element when ``elements`` is not set: each element's start-up
#: (about 5-10 s) is then shared by this many notebooks.
ITEMS_PER_ELEMENT = 8
#: Minutes an element may run beyond one task limit, when ``time`` is not set.
BATCH_MINUTES = 60
#: Seconds an element may be gone from the queue before its claims are released
#: (a shared file system may show a new fragment late).
GRACE_SECONDS = 5.0
#: Seconds between two looks at the queue and the fragments.
POLL_SECONDS = 1.0
#: Seconds a cancelled array gets to leave the queue; and, once every item is
#: merged, the elements get to exit by themselves before they are cancelled.
CANCEL_WAIT = 60.0
FINISH_WAIT = 15.0
RELEASED = "released"
RESUBMITTED = "resubmitted to Slurm"


class SlurmError(RuntimeError):
    """Slurm refused something (sbatch, squeue)."""


def _command(*args, check=True, timeout=60):
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise SlurmError(f"`{' '.join(args)}` failed: {(done.stderr or done.stdout).strip()}")
    return done


def _config_settings(course_root):
    """``c.SlurmGrading.*`` of the course root's own ``nbgrader_config.py``."""
    from traitlets.config.loader import PyFileConfigLoader

    from course_lib.grading.config import config_file

    path = config_file(course_root)
    if path is None:
        return {}
    config = PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
    found = config.get("SlurmGrading", {})
    unknown = sorted(set(found) - set(SETTINGS))
    if unknown:
        raise ValueError(f"c.SlurmGrading.{unknown[0]} in {path}: not one of {SETTINGS}.")
    return dict(found)


def element_count(items, elements, limit=None):
    """How many array elements grade ``items``: ``elements``, else one per
    :data:`ITEMS_PER_ELEMENT`; never more than the items, nor than Slurm's
    ``MaxArraySize`` allows (``limit``)."""
    wanted = elements if elements is not None else math.ceil(items / ITEMS_PER_ELEMENT)
    wanted = max(1, min(wanted, items))
    return wanted if limit is None else min(wanted, limit)


def slurm_seconds(text):
    """Seconds of a Slurm time limit (``sbatch --time``), or None when unlimited.

    Examples
    --------
    >>> [slurm_seconds(t) for t in ("40", "1:30", "2:00:00", "1-12", "1-0:0:10", "UNLIMITED")]
    [2400, 90, 7200, 129600, 86410, None]
    """
    text = str(text).strip()
    if text.upper() in ("UNLIMITED", "INFINITE", "-1"):
        return None
    days, _, rest = text.rpartition("-")
    parts = [int(x) for x in rest.split(":")]
    if days:
        hours, minutes, seconds = (parts + [0, 0])[:3]
    else:
        hours, minutes, seconds = {1: [0, parts[0], 0], 2: [0, *parts], 3: parts}[len(parts)]
    return ((int(days or 0) * 24 + hours) * 60 + minutes) * 60 + seconds


class Slurm:
    """Grading tasks as items claimed by the elements of one Slurm job array.

    Parameters
    ----------
    shared : str or Path
        A folder that this host and every compute node see at the same path.
    partition, account : str, optional
        Slurm's defaults when not given.
    time : str, optional
        Each element's limit (``sbatch --time``); default: the task limit plus
        :data:`BATCH_MINUTES`. An element claims another item only while a task
        limit (and :data:`CLAIM_MARGIN`) is left of it.
    mem : str, optional
        Each element's memory (``sbatch --mem``, e.g. ``"3G"``).
    cpus_per_task : int
        CPUs of each element (default 1: the student's kernel and two engines).
    python : str, optional
        The interpreter on the nodes (default: this one, so it must be on a shared path).
    elements : int, optional
        Array elements, each a grader that claims items until none is left
        (:func:`element_count`): as many as the slots the class may use at once.
    poll : float
        Seconds between looks at the queue.
    """

    name = "slurm"

    def __init__(
        self,
        shared=None,
        partition=None,
        account=None,
        time=None,
        mem=None,
        cpus_per_task=None,
        python=None,
        elements=None,
        poll=POLL_SECONDS,
    ):
        given = {
            "shared": shared,
            "partition": partition,
            "account": account,
            "time": time,
            "mem": mem,
            "cpus_per_task": cpus_per_task,
            "python": python,
            "elements": elements,
        }
        self._given = {k: v for k, v in given.items() if v is not None}
        self.settings = {"cpus_per_task": 1, "python": sys.executable, **self._given}
        self.poll = poll
        #: Seconds the last run spent merging fragments (the instructor's side, serial).
        self.merge_seconds = 0.0
        #: ``[(item, element)]``: every claim of the last run, released ones too.
        self.claims = []

    def describe(self):
        where = self.settings.get("partition") or "the default partition"
        return f"as a Slurm job array on {where}"

    def check(self, course_root):
        """Refuse, before anything is prepared or submitted: no Slurm, no shared folder,
        an unknown partition."""
        self.settings = {
            "cpus_per_task": 1,
            "python": sys.executable,
            **_config_settings(course_root),
            **self._given,
        }
        missing = [name for name in COMMANDS if shutil.which(name) is None]
        if missing:
            raise RuntimeError(
                f"grading on Slurm needs {', '.join(missing)} on PATH (Slurm's client "
                "commands): run it on a login node of the cluster, or grade with ON=local."
            )
        shared = self.settings.get("shared")
        if shared is None:
            raise ValueError(
                "grading on Slurm needs a shared folder that the compute nodes see: "
                "SHARED=<folder> (--shared), or c.SlurmGrading.shared in nbgrader_config.py."
            )
        shared = Path(shared)
        if not shared.is_dir():
            raise FileNotFoundError(
                f"shared folder {str(shared)!r} does not exist (or is not a folder): "
                "nothing was submitted."
            )
        if not os.access(shared, os.W_OK | os.X_OK):
            raise PermissionError(f"shared folder {str(shared)!r} is not writable.")
        self.settings["shared"] = shared.resolve()
        for name in ("cpus_per_task", "elements"):
            value = self.settings.get(name, 1)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} == {value!r}, must be an int >= 1.")
        if self.settings.get("time") is not None:
            try:
                slurm_seconds(self.settings["time"])
            except (ValueError, KeyError) as exc:
                raise ValueError(
                    f"time == {self.settings['time']!r}: not a Slurm time limit "
                    "(minutes, H:MM:SS, D-HH:MM)."
                ) from exc
        done = _command("sinfo", "-h", "-o", "%P", check=False)
        if done.returncode != 0:
            raise RuntimeError(f"Slurm does not answer (`sinfo`): {done.stderr.strip()}")
        partitions = [p.rstrip("*") for p in done.stdout.split()]
        partition = self.settings.get("partition")
        if partition is not None and partition not in partitions:
            raise ValueError(
                f"partition {partition!r} does not exist: Slurm's partitions are "
                f"{partitions}; nothing was submitted."
            )

    # -- the instructor's side ------------------------------------------------

    def _time_limit(self, task_timeout):
        """The elements' ``--time`` and its seconds (None: unlimited)."""
        from course_lib.grading.runner import TASK_TIMEOUT

        task_timeout = task_timeout or TASK_TIMEOUT
        limit = self.settings.get("time") or str(int(task_timeout // 60) + BATCH_MINUTES)
        return limit, slurm_seconds(limit)

    def _write_tasks(self, workspace, run, tasks):
        """Lessons, template, submissions into the run folder; ``tasks.json`` last,
        with one rename: the elements wait for it."""
        from course_lib.grading.config import config_file
        from course_lib.grading.layout import SOURCE_DIR, course_root_of

        lessons, entries = {}, []
        for index, task in enumerate(tasks):
            lesson = task.lesson
            if lesson.lesson not in lessons:
                # A course root of the lessons (and the course's own configuration),
                # as grade_one needs it: <root>/solutions/<lesson>; their releases apart.
                shutil.copytree(lesson.source, run / COURSE / SOURCE_DIR / lesson.lesson)
                shutil.copytree(lesson.release_dir, run / RELEASES / lesson.lesson)
                own = config_file(course_root_of([lesson.source]))
                if own is not None and not (run / COURSE / own.name).exists():
                    shutil.copy(own, run / COURSE / own.name)
                lessons[lesson.lesson] = lesson.notebooks
            if task.template_db is not None and not (run / "template.db").exists():
                shutil.copy(task.template_db, run / "template.db")
            shutil.copytree(task.folder, run / "submissions" / str(index))
            entries.append({"index": index, "student": task.student, "lesson": lesson.lesson})
        spec = {
            "run_id": workspace.run_id,
            "sandbox": workspace.sandbox,
            "timeout": tasks[0].timeout if tasks else None,
            "task_timeout": tasks[0].task_timeout if tasks else None,
            "element_seconds": self._element_seconds,
            "lessons": lessons,
            "tasks": entries,
        }
        (run / f".{TASKS}.tmp").write_text(json.dumps(spec, indent=1))
        os.rename(run / f".{TASKS}.tmp", run / TASKS)

    def _script(self, run, limit, sandbox):
        s = self.settings
        lines = [
            "#!/bin/sh",
            f"#SBATCH --job-name={run.name}",
            f"#SBATCH --output={run / 'logs' / '%A_%a.out'}",
            f"#SBATCH --chdir={run}",
            f"#SBATCH --time={limit}",
            f"#SBATCH --cpus-per-task={s['cpus_per_task']}",
            "#SBATCH --ntasks=1",
        ]
        for key, option in (("partition", "partition"), ("account", "account"), ("mem", "mem")):
            if s.get(key):
                lines.append(f"#SBATCH --{option}={s[key]}")
        lines.append(
            f"exec {s['python']} -m course_lib.grading._slurm_element {run} "
            '"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}" ' + ("on" if sandbox else "off")
        )
        path = run / "grade.sbatch"
        path.write_text("\n".join(lines) + "\n")
        return path

    def _submit(self, script, indices):
        """Submit elements ``indices``: their keys ``"<job>_<index>"``."""
        array = ",".join(str(i) for i in sorted(indices))
        done = _command("sbatch", "--parsable", f"--array={array}", str(script))
        job = done.stdout.strip().split(";")[0]
        return {f"{job}_{i}" for i in indices}

    def _queue(self, name):
        """``{element key: state}`` of this run's elements still in the queue.

        None when ``squeue`` failed (a busy controller): then nothing counts as gone.
        """
        done = _command("squeue", "-h", "-r", f"--name={name}", "-o", "%i %T", check=False)
        if done.returncode != 0:
            return None
        found = {}
        for line in done.stdout.splitlines():
            key, _, state = line.partition(" ")
            if key.partition("_")[2].isdigit():
                found[key] = state
        return found

    def cancel(self, name, wait=CANCEL_WAIT):
        """``scancel`` every element of the run; wait until none is listed."""
        _command("scancel", f"--name={name}", check=False)
        return self._wait_gone(name, wait)

    def _wait_gone(self, name, wait):
        deadline = time.monotonic() + wait
        while self._queue(name) != {} and time.monotonic() < deadline:
            time.sleep(0.2)
        return self._queue(name) or {}

    def begin(self, workspace, items, task_timeout, say=print):
        """Submit the elements now, while the lessons are prepared: they queue, start
        and import nbgrader meanwhile, then wait for ``tasks.json``.

        ``items``: at most how many notebooks there will be (students x lessons).
        """
        self.close()
        self.merge_seconds, self.claims = 0.0, []
        self._grading, self._items, self._say = None, items, say
        self._run = Path(
            tempfile.mkdtemp(prefix=f"grading-{workspace.run_id[:8]}-", dir=self.settings["shared"])
        )
        self._keep = workspace.keep
        for sub in (FRAGMENTS, CLAIMS, "logs", "submissions"):
            (self._run / sub).mkdir()
        limit, self._element_seconds = self._time_limit(task_timeout)
        self._elements = element_count(items, self.settings.get("elements"), max_array_size())
        self._script_path = self._script(self._run, limit, workspace.sandbox)
        self._live = self._submit(self._script_path, range(self._elements))
        job = next(iter(self._live)).partition("_")[0]
        say(f"slurm: job array {job} of {self._elements} element(s), run folder {self._run}")

    def close(self):
        """Cancel what is left of the run and remove its folder; say what was merged
        when the run did not finish (Ctrl-C, an error while preparing)."""
        run, self._run = getattr(self, "_run", None), None
        if run is None:
            return
        left = self.cancel(run.name) if self._queue(run.name) != {} else {}
        grading = self._grading
        if grading is None or grading.pending:
            merged = [] if grading is None else grading.merged
            total = self._items if grading is None else len(grading.tasks)
            self._say(
                f"slurm: cancelled (scancel of job array {run.name}); merged "
                f"{len(merged)} of {total}: {', '.join(merged) or 'none'}; "
                f"not graded: {total - len(merged)}"
                + (f"; still listed by squeue: {sorted(left)}" if left else "")
            )
        self.claims = read_claims(run, released=True)
        if not self._keep:  # COURSE_GRADING_KEEP=1 keeps it, to debug
            with contextlib.suppress(OSError):
                shutil.rmtree(run)

    def run(self, workspace, tasks, done, say=print):
        submit = []
        for task in tasks:
            if task.folder is None or not task.folder.is_dir():
                done(task.run(workspace))  # nothing to grade: no item for it
            else:
                submit.append(task)
        if getattr(self, "_run", None) is None:
            if not submit:
                return
            self.begin(workspace, len(submit), submit[0].task_timeout, say)
        try:
            if submit:
                self._write_tasks(workspace, self._run, submit)
                self._grading = _Grading(self, workspace, submit, done, say)
                say(f"slurm: {len(submit)} notebook(s) for the elements to claim")
                self._grading.loop()
                self._wait_gone(self._run.name, FINISH_WAIT)  # all merged: they exit
            else:
                self._grading = _Grading(self, workspace, [], done, say)  # nothing to say
        finally:
            self.close()


class _Grading:
    """The instructor's side of one run: merge, release, top up, show progress."""

    def __init__(self, place, workspace, tasks, done, say):
        self.place, self.workspace, self.run = place, workspace, place._run
        self.script, self.elements, self.live = place._script_path, place._elements, place._live
        self.tasks, self.done, self.say = tasks, done, say
        self.pending = set(range(len(tasks)))
        self.merged, self.resubmits, self.gone_since = [], {}, {}
        self.free_indices = []
        self.failed_starts = 0

    def fragment(self, index):
        return self.run / FRAGMENTS / str(index)

    def loop(self):
        last = None
        while self.pending:
            queue = self.place._queue(self.run.name)
            self._merge()
            if queue is not None:
                self._gone(queue)
                self._top_up()
            claims = read_claims(self.run)
            being_graded = sum(1 for i in self.pending if claims.get(i) in self.live)
            line = progress_line(
                len(self.tasks) - len(self.pending),
                being_graded,
                len(self.pending) - being_graded,
                len(self.tasks),
            )
            if line != last:
                self.say(line)
                last = line
            if self.pending:
                time.sleep(self.place.poll)

    def _merge(self):
        for index in sorted(self.pending):
            if not self.fragment(index).is_dir():
                continue
            self.pending.discard(index)
            outcome, info = read_fragment(self.fragment(index), self.workspace.sandbox)
            if index in self.resubmits:
                outcome.notes.append(
                    f"{RESUBMITTED} {self.resubmits[index]} time(s): its element ended "
                    "before finishing it (node lost, preempted or cancelled)"
                )
            merging = time.perf_counter()
            self.done((outcome, info))
            self.place.merge_seconds += time.perf_counter() - merging
            self.merged.append(f"{outcome.student}/{outcome.lesson}")

    def _gone(self, queue):
        """Release what elements that left the queue claimed and did not finish."""
        now = time.monotonic()
        for key in sorted(self.live):
            if key in queue:
                self.gone_since.pop(key, None)
                continue
            if now - self.gone_since.setdefault(key, now) < GRACE_SECONDS:
                continue
            self.live.discard(key)
            self.gone_since.pop(key)
            self.free_indices.append(int(key.partition("_")[2]))
            claims = read_claims(self.run, released=True)
            mine = [i for i, k in claims if k == key]
            lost = [i for i in mine if i in self.pending and not self.fragment(i).is_dir()]
            if not mine and self._unclaimed():
                self.failed_starts += 1  # it left before claiming anything: not the items'
            for index in lost:
                self._release(index, key)
            if lost:
                names = ", ".join(self._name(i) for i in lost)
                self.say(
                    f"slurm: element {key} left the queue before finishing {names} (node "
                    f"lost, preempted or cancelled): released to be graded again; the "
                    f"{len(mine) - len(lost)} it finished are kept"
                )

    def _release(self, index, key):
        self.resubmits[index] = self.resubmits.get(index, 0) + 1
        if self.resubmits[index] <= MAX_RESUBMITS:
            claim = self.run / CLAIMS / str(index)
            with contextlib.suppress(OSError):
                os.rename(claim, claim.with_name(f"{index}.{RELEASED}-{self.resubmits[index]}"))
            return
        self.pending.discard(index)  # its claim stays: no element grades it again
        self._not_graded(
            index,
            f"Slurm lost it {MAX_RESUBMITS + 1} times (last in element {key}; see "
            f"{self.run / 'logs'})",
        )

    def _not_graded(self, index, why):
        """An ``error`` outcome, no score, for an item Slurm did not grade."""
        from course_lib.grading.report import Outcome

        task = self.tasks[index]
        outcome = Outcome(
            task.student,
            task.lesson.lesson,
            status="error",
            flagged=True,
            sandboxed=self.workspace.sandbox,
            notes=[f"not graded, no score: {why}"],
        )
        self.done((outcome, None))

    def _unclaimed(self):
        claims = read_claims(self.run)
        return [i for i in sorted(self.pending) if i not in claims]

    def _top_up(self):
        """Submit elements while fewer than E are left for the unclaimed items."""
        unclaimed = self._unclaimed()
        if not unclaimed:
            return
        if self.failed_starts > MAX_RESUBMITS:
            if not self.live:
                self._give_up(unclaimed)
            return
        claimed_live = len(self.pending) - len(unclaimed)
        wanted = min(self.elements, len(unclaimed) + claimed_live)
        count = min(wanted - len(self.live), len(unclaimed))
        if count <= 0:
            return
        self.free_indices.sort()
        indices, self.free_indices = self.free_indices[:count], self.free_indices[count:]
        keys = self.place._submit(self.script, indices)
        self.live |= keys
        self.say(
            f"slurm: {len(unclaimed)} notebook(s) unclaimed with {len(self.live) - count} "
            f"element(s) left: submitted {', '.join(sorted(keys))}"
        )

    def _give_up(self, unclaimed):
        for index in unclaimed:
            self.pending.discard(index)
            self._not_graded(
                index,
                f"{self.failed_starts} Slurm element(s) ended before grading anything "
                f"(see {self.run / 'logs'})",
            )

    def _name(self, index):
        return f"{self.tasks[index].student}/{self.tasks[index].lesson.lesson}"


def max_array_size():
    """Slurm's ``MaxArraySize`` (``scontrol show config``), or None when it cannot be read."""
    if shutil.which("scontrol") is None:
        return None
    done = _command("scontrol", "show", "config", check=False)
    for line in done.stdout.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "MaxArraySize" and value.strip().isdigit():
            return int(value.strip())
    return None


def progress_line(done, running, queued, total, width=20):
    """The live progress of a run: notebooks merged, being graded, waiting.

    Examples
    --------
    >>> progress_line(2, 1, 1, 4, width=8)
    'slurm: [####....] 2/4 done, 1 running, 1 queued'
    """
    filled = int(width * done / total) if total else width
    return (
        f"slurm: [{'#' * filled}{'.' * (width - filled)}] {done}/{total} done, "
        f"{running} running, {queued} queued"
    )


def read_fragment(fragment, sandbox):
    """``(outcome, info)`` of a published fragment, its paths inside it."""
    from course_lib.grading.report import Outcome

    data = json.loads((fragment / "outcome.json").read_text())
    survivors = data.pop("survivors", [])
    for key in ("autograded", "feedback", "log"):
        data[key] = None if data[key] is None else fragment / data[key]
    data["cells"] = {k: tuple(v) for k, v in data["cells"].items()}
    outcome = Outcome(**data)
    db = fragment / "gradebook.db"
    info = {"root": fragment, "db": db, "survivors": survivors} if db.is_file() else None
    return outcome, info
