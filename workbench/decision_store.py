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
    """The questionnaire as last saved in the workspace (defaults when none, or when the file is damaged).

    Its queries per day are the workspace's traffic, kept once, with the cost projection (``costs``): the
    Costs page and the questionnaire edit the same figure, so the advice, its memo and the Costs page
    project the same monthly cost."""
    import dataclasses
    import logging

    from .costs import load_projection
    from .paths import workspace_dir
    from .store import read_json

    data = read_json(workspace_dir(workspace) / ANSWERS_FILE, None) or {}
    try:
        answers = Answers(**data.get("answers", {}))
    except (TypeError, DataError) as exc:
        logging.getLogger(__name__).warning("Ignoring damaged decision answers in %s: %s", workspace, exc)
        answers = Answers()
    return dataclasses.replace(answers, queries_per_day=round(load_projection(workspace)[0].queries_per_day))


def answers_saved(workspace: str) -> bool:
    """Whether the questionnaire was ever answered in the workspace (no recommendation before that)."""
    from .paths import workspace_dir

    return (workspace_dir(workspace) / ANSWERS_FILE).exists()


def save_answers(workspace: str, answers: Answers) -> None:
    import dataclasses
    import time

    from .paths import workspace_dir
    from .store import atomic_write_json

    from .costs import load_projection, save_projection

    atomic_write_json(workspace_dir(workspace) / ANSWERS_FILE,
                      {"answers": dataclasses.asdict(answers), "saved_at": time.time()})
    projection, overrides = load_projection(workspace)
    if projection.queries_per_day != answers.queries_per_day:  # the traffic: one figure (``load_answers``)
        save_projection(workspace, dataclasses.replace(projection, queries_per_day=float(answers.queries_per_day)),
                        overrides)


def latest_run(workspace: str) -> EvalRun | None:
    """The newest finished evaluation run the advisor can read (``eval_runs.decision_runs``), if any."""
    from .eval_runs import decision_runs

    runs = decision_runs(workspace)
    return runs[0] if runs else None
