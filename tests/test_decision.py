"""The decision rules: different situations get different recommendations, each reason tied to an
answer or a measurement; the questionnaire alone works without an evaluation; bad answers are refused."""

import pytest

from workbench.decision import Answers, Evidence, recommend
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


def test_measurements_take_part_and_are_named():
    evidence = Evidence(correct={"prompt": 0.1, "rag": 0.7, "finetune": 0.3, "hybrid": 0.6},
                        latency_p50_s={"prompt": 1.0, "rag": 6.0, "finetune": 1.2, "hybrid": 6.5},
                        source="evaluation run X")
    answers = Answers(data_changes="monthly", latency_limit_s=3.0, labelled_examples=100)
    rec = recommend(answers, evidence)
    assert rec.measured
    assert any(r.startswith("Measured: RAG answered most questions correctly (70%") for _, _, r in rec.applied)
    assert any("over your limit of 3 s" in r for _, _, r in rec.applied)
    assert rec.approach != "rag"  # too slow for the limit, although the most correct
    without = recommend(answers)
    assert not without.measured and all(not rule.startswith("measured") for rule, _, _ in without.applied)


@pytest.mark.parametrize("kwargs, message", [
    ({"data_changes": "hourly"}, "how often the data changes"),
    ({"latency_limit_s": -1.0}, "latency limit"),
    ({"queries_per_day": -5}, "queries per day"),
    ({"labelled_examples": -1}, "labelled examples"),
])
def test_absurd_answers_are_refused(kwargs, message):
    with pytest.raises(DataError, match=message):
        Answers(**kwargs)
