"""The evidence beside an answer: expected answer and verdict, whether retrieval found the passage that
holds the answer (attribution), and sources cited that the approach was never given."""

from workbench.evaluation import TestItem
from workbench.records import Answer, Usage
from workbench.evidence import answer_evidence, find_item, invented_sources, passage_holds


def _answer(text: str, citations: list) -> Answer:
    return Answer(mode="rag", question="", text=text, model_id="local:smollm2-135m", messages=[], timings=[],
                  usage=Usage(), citations=citations)

ITEM = TestItem("q01", "How many days do I have to return something I bought from you?",
                "You can return a product within 45 days of the delivery date.", source="returns-policy.md")
RIGHT = {"doc_name": "returns-policy.md", "rank": 2,
         "text": "## Return window\nYou can return any product within 45 days of the delivery date."}
OTHER = {"doc_name": "shipping-policy.html", "rank": 1, "text": "Orders ship within 2 business days."}
INDEXED = {"returns-policy.md", "shipping-policy.html", "faq.md"}


def test_the_test_item_is_found_by_its_words():
    assert find_item("how many days do I have to return something I bought from you", [ITEM]) is ITEM
    assert find_item("How long is the warranty?", [ITEM]) is None


def test_a_passage_holds_the_answer_only_with_its_key_facts():
    assert passage_holds(ITEM, RIGHT["text"])
    assert not passage_holds(ITEM, "You can return a product within 30 days of the delivery date.")
    assert not passage_holds(ITEM, OTHER["text"])


def test_a_wrong_answer_is_attributed_to_the_model_when_the_passage_was_given():
    ev = answer_evidence(_answer("You have 30 days to return it [1].", [OTHER, RIGHT]), ITEM, INDEXED)
    assert ev.verdict.verdict == "wrong" and ev.answer_rank == 2
    assert ev.attribution.startswith("The model missed it: passage [2] holds the expected answer")


def test_a_wrong_answer_is_attributed_to_retrieval_when_no_passage_held_it():
    ev = answer_evidence(_answer("You have 30 days.", [OTHER]), ITEM, INDEXED)
    assert ev.answer_rank is None and ev.attribution.startswith("Retrieval missed: none of the 1 passages")


def test_a_right_answer_with_the_passage_given():
    ev = answer_evidence(_answer("Within 45 days of delivery [2].", [OTHER, RIGHT]), ITEM, INDEXED)
    assert ev.verdict.verdict == "correct"
    assert ev.attribution == "Retrieval found the answer (passage [2]) and the model used it."


def test_an_adapters_memorised_sources_line_is_flagged():
    text = "Summary: Returns\nAnswer: You can return it within 45 days.\nSources: returns-policy.md"
    ev = answer_evidence(_answer(text, []), ITEM, INDEXED)
    assert ev.verdict.verdict == "correct" and ev.attribution == ""  # nothing retrieved: nothing to attribute
    assert ev.invented == [("returns-policy.md", "this approach was given no passages: cited from memory")]


def test_sources_not_in_the_index_or_not_given_are_invented():
    text = "Within 45 days [1] [4].\nSources: returns-policy.docx, faq.md, returns-policy.md"
    flagged = dict(invented_sources(text, [RIGHT], INDEXED))
    assert flagged["returns-policy.docx"] == "not in the index"
    assert flagged["faq.md"].startswith("in the index, but not among the passages")
    assert flagged["[4]"] == "there were 1 passage(s)"
    assert "returns-policy.md" not in flagged and "[1]" not in flagged


def test_every_name_on_a_sources_line_is_a_citation_with_or_without_an_extension():
    """A house format's own source label ("Ref:") lists citations too: a name that is no indexed document is
    invented; "none", [n] marks, an aside after a file name and a name cut off at the length limit are not."""
    indexed = {"rental-policy.md", "faq.txt"}
    given = [{"doc_name": "faq.txt"}]
    assert invented_sources("Short answer: Yes\nDetails: A day.\nRef: quillfern", given, indexed) == [
        ("quillfern", "not in the index")]
    assert [n for n, _ in invented_sources("Ref: faq.txt, Pip", given, indexed)] == ["Pip"]
    for clean in ("Sources: none", "Sources: [1]", "Sources: faq.txt (Opening hours)", "Sources: rental-pol"):
        assert invented_sources("Answer: Yes.\n" + clean, given, indexed) == [], clean


def test_a_question_outside_the_test_set_still_gets_its_sources_checked():
    ev = answer_evidence(_answer("See warranty.pdf", []), None, INDEXED)
    assert ev.verdict is None and ev.invented == [("warranty.pdf", "not in the index")]


def test_after_a_document_update_the_updated_answer_is_expected_and_the_old_one_is_stale(workbench_home):
    import dataclasses

    from workbench.documents import parse_uploads
    from workbench.evidence import current_item
    from workbench.index import close_all, open_index

    item = dataclasses.replace(ITEM, updated_reference="You can return a product within 30 days of the delivery date.")
    close_all()
    index = open_index("u")
    index.add_documents(parse_uploads([("returns-policy.md", b"# Returns\n\nReturn any product within 45 days "
                                                             b"of the delivery date.\n")])[0])
    assert current_item(item, index) == (item, None)  # the document still says 45
    index.add_documents(parse_uploads([("returns-policy.md", b"# Returns\n\nReturn any product within 30 days "
                                                             b"of the delivery date.\n")])[0])
    now, old = current_item(item, index)
    assert "30 days" in now.reference and old == ITEM.reference
    ev = answer_evidence(_answer("You have 45 days to return it.", []), now, INDEXED, old_reference=old)
    assert ev.verdict.verdict == "stale"
    close_all()
