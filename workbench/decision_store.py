"""A workspace's decision questionnaire on disk, and the evaluation run the advisor reads (the advice itself
is ``workbench.decision``, which touches no files).

    answers = load_answers(ws) if answers_saved(ws) else Answers()
    save_answers(ws, answers)
    run = latest_run(ws)  # the newest finished evaluation (not a knowledge-update run), or None
"""

from __future__ import annotations

from .decision import Answers
from .errors import DataError
from .records import EvalRun

ANSWERS_FILE = "decision.json"


def load_answers(workspace: str) -> Answers:
    """The questionnaire as last saved in the workspace (defaults when none, or when the file is damaged)."""
    import logging

    from .paths import workspace_dir
    from .store import read_json

    data = read_json(workspace_dir(workspace) / ANSWERS_FILE, None) or {}
    try:
        return Answers(**data.get("answers", {}))
    except (TypeError, DataError) as exc:
        logging.getLogger(__name__).warning("Ignoring damaged decision answers in %s: %s", workspace, exc)
        return Answers()


def answers_saved(workspace: str) -> bool:
    """Whether the questionnaire was ever answered in the workspace (no recommendation before that)."""
    from .paths import workspace_dir

    return (workspace_dir(workspace) / ANSWERS_FILE).exists()


def save_answers(workspace: str, answers: Answers) -> None:
    import dataclasses
    import time

    from .paths import workspace_dir
    from .store import atomic_write_json

    atomic_write_json(workspace_dir(workspace) / ANSWERS_FILE,
                      {"answers": dataclasses.asdict(answers), "saved_at": time.time()})


def latest_run(workspace: str) -> EvalRun | None:
    """The newest finished evaluation run the advisor can read (``eval_runs.decision_runs``), if any."""
    from .eval_runs import decision_runs

    runs = decision_runs(workspace)
    return runs[0] if runs else None
