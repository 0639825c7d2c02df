"""Strategies build the right prompt (chunks present or absent, adapter on or off), share one retrieval,
record every stage, and report a mode whose prerequisite is missing as unavailable with the reason."""

import pytest

from tests.fakes import EchoGenerator
from workbench import samples
from workbench.documents import parse_uploads
from workbench.index import close_all, open_index
from workbench.records import Adapter
from workbench.strategies import RAG_SYSTEM_PROMPT, ComparisonSpec, availability, build_messages, run_comparison


class RecordingGenerator(EchoGenerator):
    context_length = 8192

    def __init__(self):
        self.calls = []

    def _execute(self, messages, config, emit, adapter=None):
        self.calls.append((messages, adapter))
        return super()._execute(messages, config, emit, adapter)


@pytest.fixture
def small_index(workbench_home):
    close_all()
    docs = [d for d in samples.sample_documents() if d[0] in {"returns-policy.md", "faq.md"}]
    index = open_index("s")
    index.add_documents(parse_uploads(docs)[0])
    yield index
    close_all()


def test_prompts_per_mode():
    passages = [("returns-policy.md", "You can return within 45 days.")]
    assert build_messages("base", "Q?")[-1] == {"role": "user", "content": "Q?"}
    rag = build_messages("rag", "Q?", passages)
    assert rag[0]["content"] == RAG_SYSTEM_PROMPT and "[1] (returns-policy.md)\nYou can return within 45 days." in rag[1]["content"]
    ft = build_messages("finetuned", "Q?", adapter_system="You are the support assistant.")
    assert ft == [{"role": "system", "content": "You are the support assistant."}, {"role": "user", "content": "Q?"}]
    hybrid = build_messages("hybrid", "Q?", passages, adapter_system="You are the support assistant.")
    assert hybrid[0]["content"] == "You are the support assistant." and "[1]" in hybrid[1]["content"]
    assert "Context:" not in build_messages("base", "Q?")[-1]["content"]


@pytest.mark.slow
def test_comparison_shares_retrieval_and_applies_the_adapter_only_where_asked(small_index, tmp_path):
    gen = RecordingGenerator()
    adapter = Adapter(name="adapter", path=str(tmp_path / "adapter"), base_model=gen.model_id, system_prompt="SYS")
    result = run_comparison("How many days do I have to return a product?",
                            ComparisonSpec(("base", "rag", "finetuned", "hybrid"), gen, adapter=adapter),
                            index=small_index)
    assert [a.mode for a in result.answers] == ["base", "rag", "finetuned", "hybrid"] and not result.unavailable
    by_mode = {a.mode: a for a in result.answers}
    adapters = [adapter for _, adapter in gen.calls]
    assert adapters == [None, None, str(tmp_path / "adapter"), str(tmp_path / "adapter")]
    assert not by_mode["base"].citations and not by_mode["finetuned"].citations
    assert by_mode["rag"].citations == by_mode["hybrid"].citations  # one shared retrieval
    assert by_mode["rag"].citations[0]["doc_name"] == "returns-policy.md"
    assert "45 days" in gen.calls[1][0][-1]["content"] and "Context:" not in gen.calls[2][0][-1]["content"]
    stages = [t.stage for t in by_mode["hybrid"].timings]
    assert stages == ["embed_query", "dense_search", "keyword_search", "fusion", "rerank", "prompt_build", "ttft", "decode"]
    assert [t.stage for t in by_mode["base"].timings] == ["prompt_build", "ttft", "decode"]
    assert all(a.usage.tokens_in > 0 and a.usage.tokens_out > 0 for a in result.answers)
    assert by_mode["finetuned"].text.startswith("Echo (adapted):")


def test_missing_prerequisites_make_modes_unavailable_not_failing(workbench_home):
    close_all()
    empty = open_index("empty")
    gen = RecordingGenerator()
    result = run_comparison("Q?", ComparisonSpec(("base", "rag", "finetuned", "hybrid"), gen), index=empty)
    assert [a.mode for a in result.answers] == ["base"]
    assert "No documents indexed yet" in result.unavailable["rag"]
    assert "No adapter chosen" in result.unavailable["finetuned"]
    assert "No documents" in result.unavailable["hybrid"] and "No adapter" in result.unavailable["hybrid"]
    close_all()


@pytest.mark.slow
def test_stuffed_only_when_documents_fit(small_index):
    gen = RecordingGenerator()
    assert availability(["stuffed"], index=small_index, generator=gen)["stuffed"] is None
    gen.context_length = 512
    assert "tokens; the model reads 512" in availability(["stuffed"], index=small_index, generator=gen)["stuffed"]
