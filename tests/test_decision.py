"""The decision rules: different situations get different recommendations, each reason tied to an
answer or a measurement; the questionnaire alone works without an evaluation; bad answers are refused."""

import dataclasses

import pytest

from workbench.decision import APPROACHES, MIN_QUESTIONS, RULES, Answers, Evidence, describe_rules, recommend
from workbench.errors import DataError


def test_changing_data_with_citations_recommends_rag():
    rec = recommend(Answers(data_changes="weekly", citations_required=True, queries_per_day=2000,
                            labelled_examples=40))
    assert rec.approach == "rag" and not rec.measured
    assert any("changes weekly" in r for r in rec.reasons) and any("cite" in r for r in rec.reasons)


def test_fixed_format_stable_data_high_volume_recommends_fine_tuning():
    rec = recommend(Answers(data_changes="rarely", strict_format=True, queries_per_day=100_000,
                            labelled_examples=2000))
    assert rec.approach == "finetune"
    assert any("100,000 queries a day" in r for r in rec.reasons)


def test_format_and_citations_together_recommend_hybrid():
    rec = recommend(Answers(data_changes="monthly", citations_required=True, strict_format=True,
                            labelled_examples=800))
    assert rec.approach == "hybrid"


def _evidence(correct, latency=None, n=42, source="evaluation run X (50 questions)"):
    from workbench.eval_summary import wilson

    return Evidence(correct=correct, latency_p50_s=latency or {}, source=source,
                    questions={k: n for k in correct},
                    interval={k: wilson(round(v * n), n) for k, v in correct.items()})


def test_measurements_take_part_and_are_named():
    evidence = _evidence({"prompt": 0.1, "rag": 0.7, "finetune": 0.3, "hybrid": 0.6},
                         {"prompt": 1.0, "rag": 6.0, "finetune": 1.2, "hybrid": 6.5})
    answers = Answers(data_changes="monthly", latency_limit_s=3.0, labelled_examples=100)
    rec = recommend(answers, evidence)
    assert rec.measured
    assert any(r.startswith("Measured: of the approaches within your limits, Fine-tuned answered most")
               for _, _, r in rec.applied)
    assert {v.approach for v in rec.vetoed} == {"rag", "hybrid"}
    assert any("RAG takes 6.0 s (median" in v.reason and "over your limit of 3 s" in v.reason for v in rec.vetoed)
    assert rec.approach == "finetune"  # the most correct approach that meets the limit...
    assert rec.warnings and "far below RAG (70%" in rec.warnings[0] and "latency" in rec.warnings[0]  # ...said first
    without = recommend(answers)
    assert not without.measured and all(not rule.startswith("measured") for rule, _, _ in without.applied)


def test_what_the_product_manager_saw_is_vetoed():
    """Hybrid measured 0% for a team that cannot train, and RAG/base broke a 10 s limit: neither is recommended
    silently."""
    evidence = _evidence({"prompt": 0.02, "rag": 0.05, "finetune": 0.0, "hybrid": 0.0},
                         {"prompt": 11.0, "rag": 14.0, "finetune": 4.0, "hybrid": 9.0})
    rec = recommend(Answers(data_changes="monthly", latency_limit_s=10.0, team_can_train=False,
                            labelled_examples=80), evidence)
    assert rec.approach is None and {v.approach for v in rec.vetoed} == set(APPROACHES)
    assert any("Prompt only takes 11.0 s" in v.reason for v in rec.vetoed)
    assert any("nobody can run and maintain training" in v.reason for v in rec.vetoed)
    assert not rec.warnings and not rec.counter  # the page and the memo say it once, with the vetoes


def test_citations_rule_out_what_retrieves_nothing():
    rec = recommend(Answers(citations_required=True, strict_format=True, labelled_examples=5000,
                            data_changes="rarely", queries_per_day=100_000))
    assert {v.approach for v in rec.vetoed} == {"prompt", "finetune"}
    assert rec.approach == "hybrid"


def test_too_few_questions_rank_nothing():
    small = _evidence({"prompt": 0.0, "rag": 0.6, "finetune": 0.2, "hybrid": 0.2}, n=5)
    rec = recommend(Answers(labelled_examples=100), small)
    assert not small.enough
    # Said first, above the recommendation, with the count and what is needed.
    assert rec.warnings[0].startswith("Not enough evidence yet") and f"{MIN_QUESTIONS} are needed" in rec.warnings[0]
    assert "5 answerable questions" in rec.warnings[0]
    assert all(not eff for rule, eff, _ in rec.applied if rule == "measured-best-quality")
    big = recommend(Answers(labelled_examples=100), _evidence(small.correct, n=40))
    assert any(eff == {"rag": 3} for rule, eff, _ in big.applied if rule == "measured-best-quality")


def test_a_far_better_approach_is_named_before_the_recommendation():
    # Fine-tuning wins on the questionnaire, RAG measured 30 points more correct: said first.
    evidence = _evidence({"prompt": 0.1, "rag": 0.5, "finetune": 0.2, "hybrid": 0.1})
    rec = recommend(Answers(data_changes="rarely", strict_format=True, queries_per_day=200_000,
                            labelled_examples=5000), evidence)
    assert rec.approach == "finetune"
    assert any(w.startswith("Fine-tuned answered correctly 20% of 42") and "far below RAG (50%" in w for w in rec.warnings)
    close = recommend(Answers(data_changes="rarely", strict_format=True, queries_per_day=200_000,
                              labelled_examples=5000), _evidence({"rag": 0.25, "finetune": 0.2}))
    assert close.approach == "finetune" and not close.warnings  # 5 points apart: no warning
    assert "42 answerable questions" in rec.evidence_size


def test_the_rules_read_in_plain_words():
    lines = describe_rules()
    assert len(lines) == len(RULES) + 4
    assert not any("decision.py" in line or "lambda" in line for line in lines)
    assert any("latency limit" in line for line in lines) and any("+3 RAG" in line for line in lines)


@pytest.mark.parametrize("kwargs, message", [
    ({"data_changes": "hourly"}, "how often the data changes"),
    ({"latency_limit_s": -1.0}, "latency limit"),
    ({"queries_per_day": -5}, "queries per day"),
    ({"labelled_examples": -1}, "labelled examples"),
])
def test_absurd_answers_are_refused(kwargs, message):
    with pytest.raises(DataError, match=message):
        Answers(**kwargs)


def test_a_better_approach_lost_on_a_tie_is_said_so_and_overlapping_ranges_are_not_far_apart():
    """Four questions: Hybrid 2 right, RAG 1, both tied on the rules; RAG won the tie. The warning may not
    say Hybrid "scored lower", nor "far below" for ranges that overlap."""
    evidence = _evidence({"rag": 0.25, "hybrid": 0.5}, n=4)
    rec = recommend(Answers(citations_required=True, labelled_examples=100), evidence)
    assert rec.approach == "rag" and rec.scores["rag"] == rec.scores["hybrid"]
    warning = next(w for w in rec.warnings if "below Hybrid" in w)
    assert "far below" not in warning and "scored lower" not in warning
    assert "scored the same on the rules" in warning and "ranges overlap" in warning


def test_a_tie_on_every_rule_says_why_the_simplest_won():
    rec = recommend(Answers(), Evidence(), rules=[])
    assert rec.approach == "prompt"
    assert len(rec.reasons) == 1 and "a tie goes to the simplest approach" in rec.reasons[0]
    assert not any("scored the same" in c for c in rec.counter)  # said once, as the reason


def test_the_evidence_names_which_answers_stand_for_prompt_only():
    evidence = dataclasses.replace(_evidence({"prompt": 0.1, "rag": 0.5}), prompt_mode="prompted")
    rec = recommend(Answers(labelled_examples=100), evidence)
    assert "Prompt only is the run's Prompted answers" in rec.evidence_size

