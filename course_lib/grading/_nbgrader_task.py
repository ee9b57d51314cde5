"""One grading step list, run by nbgrader in a process of its own.

:mod:`course_lib.grading` starts ``python -m course_lib.grading._nbgrader_task SPEC``
in a temporary course root, one process per student and lesson, so that
every submission is graded independently of the others and every process it
starts can be found and stopped afterwards. ``SPEC`` is a JSON file::

    {"root": "/tmp/.../task-3",
     "result": "/tmp/.../task-3/result.json",
     "steps": [{"action": "autograde", "assignment": "01_x", "student": "ada"},
               {"action": "generate_feedback", "assignment": "01_x", "student": "ada"},
               {"action": "scores", "assignment": "01_x", "student": "ada"}]}

The steps call nbgrader's own API (the one its formgrader uses) with the
configuration read from ``nbgrader_config.py`` in the root. The result file
is rewritten after every step, so a step that never returns still leaves
what came before it.

``python -m course_lib.grading._nbgrader_task --worker`` is a worker
(:mod:`course_lib.grading.worker` starts it): nbgrader is imported once, then
one spec per line is read from stdin and run, each in its own course root
with a fresh nbgrader application and configuration, its own environment
variables (``spec["env"]``, restored afterwards) and its own log
(``spec["log"]``: the worker's stdout and stderr while it runs). One line of
JSON answers each spec on the worker's original stdout.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

ACTIONS = ("generate_assignment", "autograde", "generate_feedback", "scores")


def _write(path, payload):
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, path)


def _scores(api, assignment, student):
    """Scores of one submission, cell by cell, from the task's gradebook."""
    from nbgrader.api import Gradebook

    coursedir = api.coursedir
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        submission = gb.find_submission(assignment, student)
        notebooks = []
        for notebook in submission.notebooks:
            solution_cells = {cell.name for cell in notebook.notebook.solution_cells}
            cells = []
            for grade in notebook.grades:
                cells.append(
                    {
                        "cell": grade.name,
                        "auto_score": grade.auto_score,
                        "manual_score": grade.manual_score,
                        "max_score": grade.max_score,
                        "needs_manual_grade": bool(grade.needs_manual_grade),
                        # A grade cell that is not an answer cell is a test: autograded.
                        "autograded": grade.name not in solution_cells,
                    }
                )
            notebooks.append(
                {"name": notebook.name, "flagged": bool(notebook.flagged), "cells": cells}
            )
        return {
            "course_id": coursedir.course_id,
            "score": submission.score,
            "max_score": submission.max_score,
            "notebooks": notebooks,
        }


def run(spec):
    """Run the steps of ``spec``; return the result written to ``spec["result"]``."""
    root = Path(spec["root"])
    os.chdir(root)
    result = {"pid": os.getpid(), "steps": []}
    _write(spec["result"], result)

    from nbgrader.apps import NbGraderAPI
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()
    api = NbGraderAPI(config=config)
    result["execute_timeout"] = config.Execute.get("timeout", 30)  # nbgrader's default: 30 s

    # nbgrader's gradebook emits SQLAlchemy's harmless "not in session" warnings while
    # autograde creates a submission: not a word of them in the submission's log.
    from course_lib.grading.autograde import quiet_gradebook

    with quiet_gradebook():
        for step in spec["steps"]:
            _run_step(api, step, result, spec["result"])
            if not result["steps"][-1]["success"]:
                break
    return result


def _run_step(api, step, result, result_path):
    """Run one step; its record (success, log or error, seconds) joins ``result``."""
    action = step["action"]
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}, must be one of {ACTIONS}.")
    record = {"action": action, "started": time.time(), "success": False}
    result["steps"].append(record)
    _write(result_path, result)
    try:
        if action == "generate_assignment":
            outcome = api.generate_assignment(step["assignment"], force=True, create=True)
        elif action == "autograde":
            outcome = api.autograde(step["assignment"], step["student"], force=True)
        elif action == "generate_feedback":
            outcome = api.generate_feedback(step["assignment"], step["student"], force=True)
        else:
            outcome = {
                "success": True,
                "scores": _scores(api, step["assignment"], step["student"]),
            }
    except Exception:
        outcome = {"success": False, "error": traceback.format_exc()}
    record.update(outcome)
    record["seconds"] = time.time() - record["started"]
    status = "ok" if record["success"] else "FAILED"
    print(f"== {action}: {status}", record.get("log", ""), record.get("error", ""), sep="\n")
    _write(result_path, result)


#: Imported once by a worker, before it answers "ready": what every task needs.
WARM_IMPORTS = (
    "nbgrader.apps",
    "nbgrader.api",
    "nbgrader.preprocessors",
    "nbgrader.converters",
    "course_lib.grading.execute",
    "course_lib.grading.integrity",
)


def _redirect(log_path):
    """Point this process's stdout and stderr (file descriptors 1 and 2) at ``log_path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    target = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(target, 1)
    os.dup2(target, 2)
    os.close(target)


def run_in_worker(spec):
    """Run one spec with its environment and log; restore both afterwards."""
    cwd = os.getcwd()
    saved = dict(os.environ)
    os.environ.update(spec.get("env", {}))
    _redirect(spec["log"])
    try:
        result = run(spec)
        return all(step["success"] for step in result["steps"])
    except Exception:
        traceback.print_exc()
        return False
    finally:
        _redirect(os.devnull)
        os.environ.clear()
        os.environ.update(saved)
        os.chdir(cwd)


def serve(lines, answer):
    """The worker's loop: a spec per line of ``lines``, one JSON line to ``answer`` each."""
    import importlib

    for name in WARM_IMPORTS:
        importlib.import_module(name)
    print(json.dumps({"ready": os.getpid()}), file=answer, flush=True)
    for line in lines:
        if not line.strip():
            continue
        spec = json.loads(line)
        ok = run_in_worker(spec)
        print(json.dumps({"done": spec["root"], "ok": ok}), file=answer, flush=True)
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["--worker"]:
        answer = os.fdopen(os.dup(1), "w")  # the protocol keeps the original stdout
        _redirect(os.devnull)
        return serve(sys.stdin, answer)
    if len(argv) != 1:
        raise SystemExit("usage: python -m course_lib.grading._nbgrader_task SPEC.json | --worker")
    result = run(json.loads(Path(argv[0]).read_text()))
    return 0 if all(step["success"] for step in result["steps"]) else 1


if __name__ == "__main__":
    sys.exit(main())
