"""The fact-level judge: hand-made cases for each rule, and the hand-labelled tables written against the sample."""

import json

import pytest

from workbench import samples
from workbench.scoring import judge_names
from workbench.evaluation import groundedness, read_testset
from workbench.facts import extract_facts
from workbench.verdicts import CORRECT, PARTIAL, REFUSED, STALE, UNSCORED, WRONG, is_refusal, judge

Q = "How many days do I have to return something I bought from you?"


def keys(text):
    return {f.key for f in extract_facts(text)}


def test_facts_are_read_with_their_units_in_any_spelling():
    assert "45|time-d" in keys("within 45 days") and "45|time-d" in keys("a 45-day window")
    assert "45|time-d" in keys("forty-five days") and "315|time-d" in keys("45 weeks")
    assert keys("€219.00") == keys("219 euros") == keys("EUR 219") == {"219|EUR"}
    assert "2.99|EUR|month" in keys("€2.99 per month") and "1500" in keys("1,500 Seeds")
    assert "2025-03-12" in keys("12 March 2025") and "2025-03-12" in keys("March 12, 2025")
    assert "15:00" in keys("before 3 pm") and "15:00" in keys("before 15:00 CET")
    assert "4.3.2" in keys("firmware 4.3.2") and "E410" in keys("error E-410") and "BMF800" in keys("BM-F800")
    assert "18|time-m" in keys("a year and a half")


def test_a_stale_value_is_wrong_against_the_current_reference():
    v = judge("You can return it within 45 days.", "You can return a product within 30 days of delivery.", question=Q)
    assert v.verdict == WRONG and "30 days" in v.reason and "45 days" in v.reason
    assert judge("Within thirty days of delivery.", "You can return within 30 days.", question=Q).verdict == CORRECT
    assert judge("Within 45 weeks.", "You can return within 45 days.", question=Q).verdict == WRONG  # wrong unit


def test_stale_answers_are_told_apart_from_wrong_ones_after_an_update():
    old, new = "Within 45 days of delivery.", "Within 30 days of delivery."
    assert judge("You have 45 days.", new, question=Q, old_reference=old).verdict == STALE
    assert judge("You have 14 days.", new, question=Q, old_reference=old).verdict == WRONG
    assert judge("You have 30 days.", new, question=Q, old_reference=old).verdict == CORRECT


def test_refusals_and_negative_facts():
    assert is_refusal("I don't know based on the available documents.")
    assert is_refusal("The documents do not say whether customs apply.")
    assert is_refusal("I cannot find this information.")
    assert not is_refusal("The warranty does not include water damage.")
    assert not is_refusal("No, we do not deliver to the United States.")
    ref = "You can return a product within 45 days of the delivery date."
    assert judge("I'm not sure, please contact support.", ref, question=Q).verdict == REFUSED
    assert judge("I don't know.", "I don't know.", question="Revenue?", answerable=False).verdict == CORRECT
    assert judge("Revenue was €6.8 million.", "I don't know.", question="Revenue?", answerable=False).verdict == WRONG


def test_partial_contradicted_and_unscored():
    ref = "Standard shipping to Germany costs €8.50, is free for orders from €120 and takes 2 to 4 business days."
    q = "How much does shipping to Germany cost?"
    assert judge("Shipping to Germany costs €8.50.", ref, question=q).verdict == PARTIAL
    assert judge("It costs €8.50, free from €100.", ref, question=q).verdict == WRONG
    v = judge("It costs €8.50, free from €120, in 2 to 4 business days.", ref, question=q)
    assert v.verdict == CORRECT and all(f.status == "found" for f in v.facts)
    assert judge("Yes, anything.", "Be kind to the staff.", question="Any tips?").verdict == UNSCORED


def test_a_value_is_checked_with_what_it_is_paired_with():
    price = "Grow Plus costs €2.99 per month or €29 per year."
    q = "How much does Grow Plus cost?"
    assert judge("€2.99 per month or €29 per year.", price, question=q).verdict == CORRECT
    v = judge("€2.99 per month or €29 per year. You pay €29 per month.", price, question=q)
    assert v.verdict == WRONG and "€29 per month" in v.reason  # the yearly price paired with the month
    seeds, q = "Every 100 Seeds are worth a €5 voucher.", "What are my Seeds worth when I redeem them?"
    assert judge("Every 100 Seeds give you a €5 voucher.", seeds, question=q).verdict == CORRECT
    assert judge("You get €5 for each hundred Seeds.", seeds, question=q).verdict == CORRECT
    v = judge("A €5 voucher; you redeem from 200 Seeds, in steps of 100.", seeds, question=q)
    assert v.verdict == PARTIAL and "100 Seeds" in v.reason  # a 100, but not the 100 Seeds
    # "on a business day" is not a duration of one day
    assert "1|time-d" not in keys("Orders placed before 15:00 on a business day ship today.")
    assert "1|time-d" in keys("It arrives within a day.")


def test_asides_acronyms_and_scattered_guesses():
    kit = "The Balcony Starter Kit (€169.00) contains one Hub H1, two SoilSense S2 sensors and one TapValve T1."
    q = "What's included in the Balcony Starter Kit?"
    assert judge("One Hub H1, two SoilSense S2 sensors and one TapValve T1.", kit, question=q).verdict == CORRECT
    assert judge("It costs €189.00: one Hub H1, two S2 sensors, one T1.", kit, question=q).verdict == WRONG
    data = "All data is stored on servers in Frankfurt, Germany, inside the European Union."
    assert judge("On servers in Frankfurt, Germany, inside the EU.", data, question="Where?").verdict == CORRECT
    ec = "The S3 Pro also measures electrical conductivity (EC), in addition to moisture."
    assert judge("It measures water content because it reads volume.", ec, question="What does it add?").verdict == WRONG
    founders = "Brindlemoss was founded in 2017 in Deventer by Liesbeth Vrolijk and Tomasz Okrent."
    v = judge("Liesbeth Vrolijk founded it in 2017 in Deventer to create a business.", founders, question="Who?")
    assert v.verdict == PARTIAL and "Tomasz Okrent" in v.reason  # "to" is not the initials of Tomasz Okrent
    ref = "You can return a product within 45 days of the delivery date."
    v = judge("Returns open in 45 days, close in 14 days, or 7 days, or 8 weeks.", ref, question=Q)
    assert v.verdict == WRONG and "guesses" in v.reason
    assert judge("Within 45 days; refunds follow within 7 days.", ref, question=Q).verdict == CORRECT
    # The right value and another of its kind in one clause: the answer contradicts itself (judge version 4).
    rental = "A weekly rental of the QF-M450 costs £265."
    v = judge("Short answer: £265 per week\nDetails: A £265 weekly rental of the QF-M450 costs £190.\nRef: x.md",
              rental, question="How much is a weekly rental of the QF-M450?")
    assert v.verdict == WRONG and "£190" in v.reason
    assert judge("A QF-M450 costs £265 a week, and the deposit is £100.", rental, question="How much?").verdict == CORRECT
    # The house format's Answer line is what is judged; a fact only its Summary states is named in the reason.
    v = judge("Summary: 5 years\nAnswer: The warranty starts on the delivery date.\nSources: warranty-policy.pdf",
              "The FlowMate 4 has a 5-year warranty from the delivery date.", question="How long is the warranty?")
    assert v.verdict == WRONG and "Only the Answer line is judged; another line states 5-year" in v.reason
    assert "Only the Answer line" not in judge("Summary: Yes\nAnswer: Within 45 days.", ref, question=Q).reason
    # The right figures about another thing of the kind asked about: wrong (judge version 5).
    york, q5 = "The York depot is open 09:00-17:30 every day.", "When is the York depot open?"
    v = judge("The Leeds depot (14 Wharf Street) is open 09:00-17:30 every day.", york, question=q5)
    assert v.verdict == WRONG and "Leeds depot" in v.reason
    assert judge("It is open 09:00-17:30 every day.", york, question=q5).verdict == CORRECT
    assert judge("The York depot opens 09:00-17:30 every day; the Leeds depot opens earlier.", york,
                 question=q5).verdict == CORRECT


def test_a_denied_name_and_an_opening_denial_are_contradictions():
    ref = ("The S3 Pro also measures electrical conductivity (EC), which shows the fertiliser level, in addition "
           "to moisture and temperature.")
    q = "What does the SoilSense S3 Pro measure that the S2 doesn't?"
    v = judge("The SoilSense S3 Pro doesn't measure EC, so you can't read it on the S2.", ref, question=q)
    assert v.verdict == WRONG and "not EC" in v.reason
    assert judge("The S3 Pro measures EC (electrical conductivity) as well, so you can see fertiliser.", ref,
                 question=q).verdict == CORRECT
    # A denial the reference shares is agreement; one the answer adds, or drops, contradicts it.
    no_us = "No, Brindlemoss only ships within Europe and does not deliver to the United States."
    us = "Can you deliver my order to the United States?"
    assert judge("No, we only ship within Europe.", no_us, question=us, background=frozenset({"brindlemoss"})
                 ).verdict == CORRECT
    v = judge("No, we do not ship within Europe.", no_us, question=us, background=frozenset({"brindlemoss"}))
    assert v.verdict == WRONG and "not Europe" in v.reason
    no_pro = "No, the Balcony Starter Kit does not include the SoilSense S3 Pro."
    kit = "Does the Balcony Starter Kit come with a pro sensor?"
    assert judge("No, the kit does not include the SoilSense S3 Pro.", no_pro, question=kit).verdict == CORRECT
    v = judge("The kit includes the SoilSense S3 Pro.", no_pro, question=kit)
    assert v.verdict == WRONG and "not SoilSense (the answer says SoilSense)" in v.reason
    ref05 = "Yes, 38 days after delivery is still within the 45-day return window."
    q05 = "My parcel was delivered 38 days ago and I changed my mind. Can I still send it back?"
    v = judge("Your return window is not available. You can expect a return within 45 days of receiving it.",
              ref05, question=q05)
    assert v.verdict == WRONG and "the answer says No" in v.reason
    assert judge("You can still send it back: the 45-day window has not ended.", ref05, question=q05).verdict == CORRECT
    assert judge("Within 45 days; you don't need to give a reason.", "You can return a product within 45 days "
                 "of the delivery date.", question=Q).verdict == CORRECT


def test_grounding_checks_facts_not_words():
    passage = "You can return any product within 30 days of the delivery date."
    assert groundedness("You can return any product within 90 days of the delivery date.", [passage]) == 0.0
    assert groundedness("You can return any product within 30 days of the delivery date.", [passage]) == 1.0
    assert groundedness("Anything", []) is None


def _disagreements(table):
    path = samples.sample_dir() / "eval_set.jsonl"
    items, _ = read_testset(path.name, path.read_bytes())
    by_id, names = {i.id: i for i in items}, judge_names(items)
    cases = [json.loads(line) for line in (samples.sample_dir() / f"{table}.jsonl").read_text().splitlines()]
    wrong = []
    for case in cases:
        item = by_id[case["item"]]
        updated = case["scored_against"] == "updated_reference"
        v = judge(case["answer"], item.updated_reference if updated else item.reference, question=item.question,
                  answerable=item.answerable, old_reference=item.reference if updated else None,
                  background=names.background, known=names.known)
        if v.verdict != case["expected"]:
            wrong.append((case["id"], case["expected"], v.verdict, v.reason))
    return cases, wrong


# The written tables hold at least 95%; the real answers of the 135M model (``judge_cases_model``) are
# harder: it puts the right figure in the wrong claim ("45 days" as a delivery time), which facts cannot
# show (docs/quality.md); it holds at least 90%, and all four together at least 95%.
@pytest.mark.parametrize("table,floor", [("judge_cases", 0.95), ("judge_cases_heldout", 0.95),
                                         ("judge_cases_fresh", 0.95), ("judge_cases_model", 0.90)])
def test_the_judge_agrees_with_the_hand_labels(table, floor):
    cases, wrong = _disagreements(table)
    assert len(cases) >= 45
    assert 1 - len(wrong) / len(cases) >= floor, wrong


def test_the_judge_agrees_with_95_percent_of_all_hand_labels():
    tables = ["judge_cases", "judge_cases_heldout", "judge_cases_fresh", "judge_cases_model"]
    counts = [(len(c), len(w)) for c, w in map(_disagreements, tables)]
    assert 1 - sum(w for _, w in counts) / sum(n for n, _ in counts) >= 0.95


def test_the_evaluate_page_states_the_judges_current_agreement():
    """The figure on screen is the one the tables give today: a judge change that moves it must update it."""
    import re
    from pathlib import Path

    tables = ["judge_cases", "judge_cases_heldout", "judge_cases_fresh", "judge_cases_model"]
    counts = {t: (len(c), len(w)) for t, (c, w) in zip(tables, map(_disagreements, tables))}
    total = sum(n for n, _ in counts.values())
    agree = total - sum(w for _, w in counts.values())
    written = [counts[t] for t in tables[:3]]
    model = counts["judge_cases_model"]
    source = (Path(__file__).resolve().parents[1] / "views" / "evaluate.py").read_text()
    page = re.sub(r'"\s*\n\s*"', "", source)  # adjacent string literals, joined as Python joins them
    assert f"on {total} answers labelled by hand against the sample, the judge agrees with the label on {agree}" in page
    assert f"{sum(n - w for n, w in written)} of {sum(n for n, _ in written)} answers written" in page
    assert f"{model[0] - model[1]} of {model[0]} real answers" in page
