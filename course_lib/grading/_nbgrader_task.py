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

    for step in spec["steps"]:
        action = step["action"]
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}, must be one of {ACTIONS}.")
        record = {"action": action, "started": time.time(), "success": False}
        result["steps"].append(record)
        _write(spec["result"], result)
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
        _write(spec["result"], result)
        if not record["success"]:
            break
    return result


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m course_lib.grading._nbgrader_task SPEC.json")
    result = run(json.loads(Path(argv[0]).read_text()))
    return 0 if all(step["success"] for step in result["steps"]) else 1


if __name__ == "__main__":
    sys.exit(main())
