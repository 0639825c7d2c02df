"""The README.md that travels with a saved adapter (its zip download included): what it is, the base
model it belongs to, how it was trained and how to load it elsewhere.

peft writes a template full of "[More Information Needed]" whose ``base_model`` is the local folder the
model was loaded from; this card replaces it with what the adapter's metadata records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def card(meta: dict[str, Any]) -> str:
    """The card's Markdown, from an adapter's ``workbench-adapter.json`` contents."""
    config = meta.get("config") or {}
    hub = meta.get("base_hub_id")
    name = meta.get("name", "adapter")
    lines = ["---", f"base_model: {hub}" if hub else None, "library_name: peft",
             "tags:", "- lora", "- rag-vs-fine-tune-workbench", "---", "",
             f"# {name}", "",
             f"A LoRA adapter trained with RAG-vs-Fine-tune Workbench on {meta.get('train_pairs')} question-answer "
             f"pairs ({meta.get('val_pairs')} more held out for validation).", "",
             f"- **Base model:** `{meta.get('base_model')}`" + (f" (Hugging Face: `{hub}`)" if hub else
                                                                  " (no Hugging Face id known)"),
             f"- **Loaded from:** {meta.get('base_origin')}",
             f"- **Method:** {meta.get('method')}, {meta.get('precision')} "
             f"({meta.get('method_reason')})",
             f"- **Settings:** rank {config.get('rank')}, alpha {config.get('alpha')}, dropout {config.get('dropout')}, "
             f"target modules {config.get('target_modules')}, {config.get('epochs')} epochs, learning rate "
             f"{config.get('learning_rate')}, batches of {config.get('batch_size')}, max length "
             f"{config.get('max_length')} tokens, seed {config.get('seed')}",
             "- **Retrieval-aware:** " + (_context(meta.get("context") or {}) if meta.get("retrieval_aware") else
                                          "no (trained on bare questions)"),
             f"- **Training:** {meta.get('steps')} steps in {meta.get('wall_s')} s on {meta.get('device_name')}; "
             f"final training loss {_num(meta.get('final_train_loss'))}, validation loss "
             f"{_num(meta.get('final_val_loss'))}",
             f"- **Data:** sha256 {str(meta.get('data_hash', ''))[:16]}… of the pairs; `training_pairs.jsonl` holds "
             "the pairs it learned from",
             f"- **System prompt it was trained with:** {meta.get('system_prompt') or '(none)'}", "",
             "`workbench-adapter.json` holds every setting and the loss after each logged step.", "",
             "## Load it", "",
             "```python",
             "from peft import PeftModel",
             "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
             f'base = AutoModelForCausalLM.from_pretrained("{hub or "<the base model>"}")',
             f'model = PeftModel.from_pretrained(base, "{name}")  # this folder',
             f'tokenizer = AutoTokenizer.from_pretrained("{hub or "<the base model>"}")',
             "```", "",
             "With vLLM (see the workbench's docs/scale-out.md):", "",
             "```bash",
             f"vllm serve {hub or '<the base model>'} --enable-lora --lora-modules {name}=./{name} "
             f"--max-lora-rank {config.get('rank')}",
             "```", ""]
    return "\n".join(line for line in lines if line is not None)


def write(folder: Path, meta: dict[str, Any]) -> None:
    """Write the card as ``folder/README.md`` (replacing peft's template)."""
    (folder / "README.md").write_text(card(meta), encoding="utf-8")


def _context(context: dict[str, Any]) -> str:
    sentences = context.get("sentences") or context.get("context_sentences")
    passages = context.get("top_k")
    return ("yes: each pair's prompt held the passages the workspace's index retrieved for its question"
            + (f" ({passages} per pair" if passages else " (") + (f", cut to {sentences} sentences each)" if sentences
                                                                   else ")"))


def _num(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "not measured"
