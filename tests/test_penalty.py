"""The repetition penalty per row: answers given with an adapter get their own (none by default).

An adapter trained on the house format ends its answers without looping, and the format restates the
Summary line's figure on the Answer line; the penalty that keeps the base model from looping pushed
those answers off the figure (docs/quality.md)."""

from contextlib import nullcontext
from types import SimpleNamespace

import pytest
import torch

from workbench.cli import build_parser
from workbench.config import GenerationConfig
from workbench.errors import ConfigError
from workbench.generation.batching import Row, Sampling, decode

FIGURE, OTHER = 5, 3


def test_a_row_with_an_adapter_may_restate_a_figure_a_base_row_is_penalised_for():
    """Both rows have the figure among the tokens the penalty counts: the base row is penalised for saying
    it again, the adapter row, with its own penalty of 1.0, is not."""
    logits = torch.zeros(1, 1, 16)
    logits[0, 0, FIGURE], logits[0, 0, OTHER] = 2.0, 1.5  # the figure wins unless penalised (2.0 / 1.5 < 1.5)

    def forward(**kwargs):
        return SimpleNamespace(logits=logits, past_key_values=None)

    got: dict[str, list[int]] = {"base": [], "adapter": []}
    for name, adapter in (("base", None), ("adapter", "a1")):
        row = Row(torch.tensor([1, FIGURE]), adapter, 1, got[name].append, lambda: None)
        sampling = Sampling(True, 0.0, 1.0, 1.5, 0, True, 1.0)  # the prompt's tokens count: the figure is said
        decode(forward, [row], set(), sampling, lambda names: nullcontext())
    assert got == {"base": [OTHER], "adapter": [FIGURE]}


def test_each_answer_is_given_its_approachs_penalty():
    config = GenerationConfig()
    assert (config.repetition_penalty, config.adapter_repetition_penalty) == (1.1, 1.0)
    assert config.penalty(None) == 1.1 and config.penalty("/adapters/house") == 1.0
    assert GenerationConfig(adapter_repetition_penalty=1.1).penalty("/adapters/house") == 1.1
    sampling = Sampling(True, 0.0, 1.0, 1.1, 0, False, 1.0)
    assert sampling.penalty(Row(torch.tensor([1]), "a1", 1, print, print)) == 1.0
    assert sampling.penalty(Row(torch.tensor([1]), None, 1, print, print)) == 1.1
    assert Sampling(True, 0.0, 1.0, 1.1, 0).penalty(Row(torch.tensor([1]), "a1", 1, print, print)) == 1.1
    with pytest.raises(ConfigError, match="adapter_repetition_penalty between 1.0 and 2.0, got 0.5"):
        GenerationConfig(adapter_repetition_penalty=0.5)


def test_the_command_line_takes_both_penalties():
    for command in (["ask", "Q"], ["evaluate"]):
        args = build_parser().parse_args(command)
        assert (args.repetition_penalty, args.adapter_repetition_penalty) == (1.1, 1.0)
        args = build_parser().parse_args(command + ["--repetition-penalty", "1.2", "--adapter-repetition-penalty",
                                                    "1.1"])
        assert (args.repetition_penalty, args.adapter_repetition_penalty) == (1.2, 1.1)


def test_a_stored_run_says_how_its_repeats_were_penalised():
    assert GenerationConfig.penalty_note(GenerationConfig().to_dict()) == \
        "repetition penalty 1.1 (none for answers with an adapter)"
    older = {k: v for k, v in GenerationConfig().to_dict().items() if k != "adapter_repetition_penalty"}
    assert GenerationConfig.penalty_note(older) == "repetition penalty 1.1"  # before, adapters had the same
    assert GenerationConfig.penalty_note({"repetition_penalty": 1.0}) == "repetition penalty none"
