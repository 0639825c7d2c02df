"""Editable prompts, the Prompted approach's examples, and retrieval-aware training pairs."""

import pytest

from workbench.errors import ConfigError
from workbench.history import mode_signature
from workbench.config import GenerationConfig, RetrievalConfig, TrainConfig
from workbench.pairs import Pair
from workbench.prompts import (DEFAULTS, ExamplePool, PromptSet, PromptTemplate, format_instructions, load_prompts,
                               reset_prompts, save_prompts)
from workbench.raft import refusal_completion
from workbench.strategies import build_messages

HOUSE = ["Summary: 45-day window\nAnswer: Within 45 days.\nSources: returns-policy.md",
         "Summary: Free label in NL\nAnswer: The label is free in NL.\nSources: returns-policy.md",
         "Summary: Not known\nAnswer: I don't know based on the available documents.\nSources: none"]


def bag_embed(texts):
    """A tiny deterministic embedder: unit vectors of letter counts."""
    out = []
    for t in texts:
        v = [t.lower().count(c) for c in "abcdefghijklmnopqrstuvwxyz"]
        n = sum(x * x for x in v) ** 0.5 or 1.0
        out.append([x / n for x in v])
    return out


def test_templates_are_validated_saved_and_reset(workbench_home):
    with pytest.raises(ConfigError, match=r"contain \{question\}"):
        PromptSet({"base": PromptTemplate("sys", "no placeholder")})
    with pytest.raises(ConfigError, match=r"contain \{context\}"):
        PromptSet({"rag": PromptTemplate("sys", "{question}")})
    with pytest.raises(ConfigError, match="is given no passages"):
        PromptSet({"base": PromptTemplate("{context}", "{question}")})
    edited = PromptSet({**DEFAULTS, "base": PromptTemplate("Be terse.", "Q: {question}")}, examples=2)
    save_prompts("w", edited)
    loaded = load_prompts("w")
    assert loaded.template("base").system == "Be terse." and loaded.examples == 2 and loaded.edited() == ["base"]
    messages = build_messages("base", "Why?", prompts=loaded)
    assert messages == [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Q: Why?"}]
    assert reset_prompts("w", "base").edited() == []


def test_the_prompt_is_part_of_the_cache_key():
    common = dict(model_id="m", adapter=None, adapter_system=None, config=GenerationConfig(),
                  retrieval=RetrievalConfig(), index_fingerprint="x")
    a = PromptSet()
    b = PromptSet({**DEFAULTS, "rag": PromptTemplate("Only facts.", "Context:\n{context}\n\nQuestion: {question}")})
    assert mode_signature("rag", prompt=a.signature("rag"), **common) != \
        mode_signature("rag", prompt=b.signature("rag"), **common)
    assert mode_signature("base", prompt=a.signature("base"), **common) == \
        mode_signature("base", prompt=b.signature("base"), **common)


def test_prompted_gets_the_format_and_the_nearest_examples_but_never_the_question_itself():
    assert format_instructions(HOUSE).splitlines()[1:] == ["Summary: ...", "Answer: ...", "Sources: ..."]
    assert format_instructions(["plain text", "more text"]) == ""
    pairs = [{"question": "How many days do I have to return a product?", "answer": HOUSE[0]},
             {"question": "Is the return label free?", "answer": HOUSE[1]},
             {"question": "What was your revenue?", "answer": HOUSE[2]}]
    pool = ExamplePool(pairs, bag_embed, system="You are the assistant.")
    chosen = pool.select("How many days do I have to return a product?", 2)
    assert pairs[0] not in chosen and len(chosen) == 2
    messages = build_messages("prompted", "How long is the warranty?", adapter_system=pool.system,
                              examples=chosen, format_text=pool.format_text)
    assert messages[0]["role"] == "system" and "Summary: ..." in messages[0]["content"]
    assert "You are the assistant." in messages[0]["content"]
    assert [m["role"] for m in messages[1:]] == ["user", "assistant", "user", "assistant", "user"]
    assert messages[-1]["content"] == "How long is the warranty?"
    # Base gets neither examples nor format, whatever it is passed.
    assert len(build_messages("base", "Q?", examples=chosen, format_text=pool.format_text)) == 2


def test_distractor_pairs_learn_the_data_sets_own_refusal():
    def pair(q, a):
        return Pair((("system", "S"), ("user", q)), a, 1)

    pairs = [pair("Revenue?", "Summary: Revenue not in the documents\nAnswer: I don't know based on the available "
                               "documents.\nSources: none"),
             pair("Units sold?", "Summary: Sales figures not in the documents\nAnswer: I don't know based on the "
                                 "available documents.\nSources: none"),
             pair("Return window?", HOUSE[0])]
    assert refusal_completion(pairs) == ("Summary: Not in the documents\nAnswer: I don't know based on the available "
                                         "documents.\nSources: none")
    assert refusal_completion(pairs[2:]) is None
    with pytest.raises(ConfigError, match="needs the workspace's documents indexed"):
        from workbench.raft import with_retrieved_context

        with_retrieved_context(pairs, None, TrainConfig(context_passages=3))
