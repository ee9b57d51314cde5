"""Grading a class through Slurm: every (student, lesson) an element of one job array.

The instructor's side (:class:`Slurm`, the ``slurm`` place of
:mod:`course_lib.grading.placement`) writes a run folder into a folder that
both it and the compute nodes see (``shared``): the prepared lessons, the
template gradebook, each submission, ``tasks.json`` and the batch script;
then one ``sbatch --array=0-N``. Each element (:func:`run_element`, ``python
-m course_lib.grading.slurm RUN INDEX``) grades its submission in a workspace
on the node's local disk (``$TMPDIR``), sandboxed as on one host
(:func:`course_lib.grading.autograde.grade_one`, whose own retries handle what
fails inside), and publishes its fragment (outcome, task gradebook, autograded
notebook, feedback, log) as ``fragments/<index>/`` with one rename.

The instructor's side merges each fragment as it appears, prints the progress
(done, running, queued), and resubmits an element that left the queue with no
fragment (node lost, preempted, cancelled by ``scancel``): that is never the
student's doing, since whatever the student's code does ends in a fragment.
Ctrl-C cancels the array (``scancel``), waits for it to leave the queue and
says what was merged.

Settings, from ``nbgrader_config.py`` (``c.SlurmGrading.partition = "cpu"``
...) or the command line (which wins): ``shared``, ``partition``,
``account``, ``time``, ``mem``, ``cpus_per_task``, ``python``.

Examples
--------
>>> Slurm(shared=None).settings["cpus_per_task"]
1
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["Slurm", "run_element", "SlurmError"]

#: Client commands the instructor's side needs.
COMMANDS = ("sbatch", "squeue", "scancel", "sinfo")
#: What can be set in ``nbgrader_config.py`` as ``c.SlurmGrading.<name>``.
SETTINGS = ("shared", "partition", "account", "time", "mem", "cpus_per_task", "python")
#: Times an element that left the queue without a result is submitted again.
MAX_RESUBMITS = 3
#: Seconds an element may be gone from the queue before its fragment shows (a
#: shared file system may show a new folder late).
GRACE_SECONDS = 5.0
#: Seconds between two looks at the queue and the fragments.
POLL_SECONDS = 1.0
#: Seconds a cancelled array gets to leave the queue.
CANCEL_WAIT = 60.0
FRAGMENTS = "fragments"
RESUBMITTED = "resubmitted to Slurm"


class SlurmError(RuntimeError):
    """Slurm refused something (sbatch, squeue)."""


def _command(*args, check=True, timeout=60):
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise SlurmError(f"`{' '.join(args)}` failed: {(done.stderr or done.stdout).strip()}")
    return done


def _config_settings(course_root):
    """``c.SlurmGrading.*`` of the course's ``nbgrader_config.py``."""
    from traitlets.config.loader import PyFileConfigLoader

    from course_lib.grading.layout import CONFIG_FILE

    path = Path(course_root) / "nbgrader_config.py"
    path = path if path.is_file() else CONFIG_FILE
    config = PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
    found = config.get("SlurmGrading", {})
    unknown = sorted(set(found) - set(SETTINGS))
    if unknown:
        raise ValueError(f"c.SlurmGrading.{unknown[0]} in {path}: not one of {SETTINGS}.")
    return dict(found)


class Slurm:
    """Grading tasks as the elements of one Slurm job array.

    Parameters
    ----------
    shared : str or Path
        A folder that this host and every compute node see at the same path.
    partition, account : str, optional
        Slurm's defaults when not given.
    time : str, optional
        Each element's limit (``sbatch --time``); default: the task limit plus 10 minutes.
    mem : str, optional
        Each element's memory (``sbatch --mem``, e.g. ``"3G"``).
    cpus_per_task : int
        CPUs of each element (default 1: the student's kernel and two engines).
    python : str, optional
        The interpreter on the nodes (default: this one, so it must be on a shared path).
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
        }
        self._given = {k: v for k, v in given.items() if v is not None}
        self.settings = {"cpus_per_task": 1, "python": sys.executable, **self._given}
        self.poll = poll
        #: Seconds the last run spent merging fragments (the instructor's side, serial).
        self.merge_seconds = 0.0

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
        cpus = self.settings["cpus_per_task"]
        if isinstance(cpus, bool) or not isinstance(cpus, int) or cpus < 1:
            raise ValueError(f"cpus_per_task == {cpus!r}, must be an int >= 1.")
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

    def _write_run(self, workspace, tasks):
        """The run folder in the shared folder: lessons, template, submissions, tasks."""
        run = Path(
            tempfile.mkdtemp(prefix=f"grading-{workspace.run_id[:8]}-", dir=self.settings["shared"])
        )
        for sub in (FRAGMENTS, "logs", "submissions"):
            (run / sub).mkdir()
        lessons, entries = {}, []
        for index, task in enumerate(tasks):
            lesson = task.lesson
            if lesson.lesson not in lessons:
                base = run / "lessons" / lesson.lesson
                shutil.copytree(lesson.source, base / "source", symlinks=False)
                shutil.copytree(lesson.release_dir, base / "release")
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
            "lessons": lessons,
            "tasks": entries,
        }
        (run / "tasks.json").write_text(json.dumps(spec, indent=1))
        return run

    def _script(self, run, task_timeout):
        s = self.settings
        limit = s.get("time") or str(int(task_timeout // 60) + 10)
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
        lines.append(f'exec {s["python"]} -m course_lib.grading.slurm {run} "$SLURM_ARRAY_TASK_ID"')
        path = run / "grade.sbatch"
        path.write_text("\n".join(lines) + "\n")
        return path

    def _submit(self, script, indices):
        array = ",".join(str(i) for i in sorted(indices))
        done = _command("sbatch", "--parsable", f"--array={array}", str(script))
        return done.stdout.strip().split(";")[0]

    def _queue(self, name):
        """``{index: (job id, state)}`` of this run's elements still in the queue.

        None when ``squeue`` failed (a busy controller): then nothing counts as gone.
        """
        done = _command("squeue", "-h", "-r", f"--name={name}", "-o", "%i %T", check=False)
        if done.returncode != 0:
            return None
        found = {}
        for line in done.stdout.splitlines():
            element, _, state = line.partition(" ")
            job, _, index = element.partition("_")
            if index.isdigit():
                found[int(index)] = (job, state)
        return found

    def cancel(self, name, wait=CANCEL_WAIT):
        """``scancel`` every element of the run; wait until none is listed."""
        _command("scancel", f"--name={name}", check=False)
        deadline = time.monotonic() + wait
        while self._queue(name) != {} and time.monotonic() < deadline:
            time.sleep(0.5)
        return self._queue(name) or {}

    def run(self, workspace, tasks, done, say=print):
        from course_lib.grading.report import Outcome

        submit = []
        for task in tasks:
            if task.folder is None or not task.folder.is_dir():
                done(task.run(workspace))  # nothing to grade: no element for it
            else:
                submit.append(task)
        if not submit:
            return
        self.merge_seconds = 0.0
        limit = max_array_size()
        if limit is not None and len(submit) > limit - 1:
            raise RuntimeError(
                f"{len(submit)} submissions do not fit one job array: this Slurm's "
                f"MaxArraySize is {limit} (array indices 0-{limit - 1}); ask the cluster's "
                "administrators to raise it, or grade fewer lessons at once (LESSONS=...). "
                "Nothing was submitted."
            )
        run = self._write_run(workspace, submit)
        script = self._script(run, submit[0].task_timeout)
        pending = set(range(len(submit)))
        job = self._submit(script, pending)
        jobs = {i: job for i in pending}
        resubmits, gone_since, merged, last = {}, {}, [], None
        say(f"slurm: job array {job} of {len(submit)} element(s), run folder {run}")
        try:
            while pending:
                queue = self._queue(run.name)
                for index in sorted(pending):
                    fragment = run / FRAGMENTS / str(index)
                    if fragment.is_dir():
                        pending.discard(index)
                        outcome, info = read_fragment(fragment, workspace.sandbox)
                        if index in resubmits:
                            outcome.notes.append(
                                f"{RESUBMITTED} {resubmits[index]} time(s): an element ended "
                                "without a result (node lost, preempted or cancelled)"
                            )
                        merging = time.perf_counter()
                        done((outcome, info))
                        self.merge_seconds += time.perf_counter() - merging
                        merged.append(f"{outcome.student}/{outcome.lesson}")
                        continue
                    if queue is None or queue.get(index, ("", ""))[0] == jobs[index]:
                        gone_since.pop(index, None)
                        continue
                    first = gone_since.setdefault(index, time.monotonic())
                    if time.monotonic() - first < GRACE_SECONDS:
                        continue
                    gone_since.pop(index)
                    if resubmits.get(index, 0) >= MAX_RESUBMITS:
                        pending.discard(index)
                        task = submit[index]
                        outcome = Outcome(
                            task.student,
                            task.lesson.lesson,
                            status="error",
                            flagged=True,
                            sandboxed=workspace.sandbox,
                            notes=[
                                f"not graded, no score: Slurm lost it {MAX_RESUBMITS + 1} "
                                f"times (see {run / 'logs'})"
                            ],
                        )
                        done((outcome, None))
                        continue
                    resubmits[index] = resubmits.get(index, 0) + 1
                    jobs[index] = self._submit(script, [index])
                    say(
                        f"slurm: element {index} ({submit[index].student}/"
                        f"{submit[index].lesson.lesson}) left the queue without a result: "
                        f"resubmitted as job {jobs[index]}"
                    )
                running = sum(
                    1
                    for index in pending
                    if (queue or {}).get(index, ("", ""))[0] == jobs[index]
                    and queue[index][1] in ("RUNNING", "COMPLETING")
                )
                queued = len(pending) - running
                line = progress_line(len(submit) - len(pending), running, queued, len(submit))
                if line != last:
                    say(line)
                    last = line
                if pending:
                    time.sleep(self.poll)
        except KeyboardInterrupt:
            left = self.cancel(run.name)
            say(
                f"slurm: cancelled (scancel of job array {run.name}); merged "
                f"{len(merged)} of {len(submit)}: {', '.join(merged) or 'none'}; "
                f"not graded: {len(pending)}"
                + (f"; still listed by squeue: {sorted(left)}" if left else "")
            )
            raise
        finally:
            with contextlib.suppress(OSError):
                shutil.rmtree(run)


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
    """The live progress of a run.

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


def _outcome_json(outcome, fragment):
    data = dataclasses.asdict(outcome)
    for key in ("autograded", "feedback", "log"):
        data[key] = None if data[key] is None else str(Path(data[key]).relative_to(fragment))
    return data


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


# -- the node's side ---------------------------------------------------------


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def run_element(run, index):
    """Grade element ``index`` of the run folder ``run`` on this node; publish its fragment."""
    from course_lib.grading.autograde import grade_one
    from course_lib.grading.layout import PreparedLesson
    from course_lib.grading.runner import AUDIT_DIR, Workspace

    run = Path(run)
    spec = json.loads((run / "tasks.json").read_text())
    entry = spec["tasks"][index]
    lesson_name = entry["lesson"]
    workspace = Workspace(sandbox=spec["sandbox"], parent=os.environ.get("TMPDIR"))
    job = os.environ.get("SLURM_JOB_ID", str(os.getpid()))
    staging = run / FRAGMENTS / f".{index}.{job}.tmp"
    try:
        local = workspace.new_dir("element")
        shutil.copytree(run / "lessons" / lesson_name, local / "lesson")
        shutil.copytree(run / "submissions" / str(index), local / "submitted" / lesson_name)
        shutil.copy(run / "template.db", local / "template.db")
        lesson = PreparedLesson(
            lesson_name,
            local / "lesson" / "source",
            local / "lesson" / "release",
            spec["lessons"][lesson_name],
        )
        outcome, info = grade_one(
            workspace,
            lesson,
            entry["student"],
            local / "submitted" / lesson_name,
            local / "template.db",
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
        return 0
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        workspace.kill_all()
        workspace.cleanup()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or not argv[1].isdigit():
        raise SystemExit("usage: python -m course_lib.grading.slurm RUN_FOLDER INDEX")
    signal.signal(signal.SIGTERM, _on_sigterm)  # scancel: stop what the task started
    return run_element(argv[0], int(argv[1]))


if __name__ == "__main__":
    sys.exit(main())
