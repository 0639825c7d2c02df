"""Typed, frozen configuration objects.

Each field has a default and a help text (``field(metadata={"help": ...})``) that the CLI and the
pages reuse; cross-field checks live in ``__post_init__`` and raise ``ConfigError``. Core code takes
these objects as arguments and never reads Streamlit state or secrets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import ConfigError

#: The offline default models, shipped by PyPI packages (see ``workbench.models``).
DEFAULT_GENERATOR = "local:smollm2-135m"
DEFAULT_EMBEDDER = "local:all-minilm-l6-v2"


def _help(text: str, default: Any) -> Any:
    return field(default=default, metadata={"help": text})


def help_for(config_cls: type, name: str) -> str:
    """The help text of field ``name`` of a config dataclass (for widgets and ``--help``)."""
    for f in fields(config_cls):
        if f.name == name:
            return f.metadata.get("help", "")
    raise KeyError(name)


@dataclass(frozen=True)
class GenerationConfig:
    """How a generator produces one answer."""

    max_new_tokens: int = _help("Upper limit on generated tokens per answer.", 160)
    temperature: float = _help("0 means greedy decoding (repeatable); above 0 samples.", 0.0)
    top_p: float = _help("Nucleus sampling mass, used only when temperature > 0.", 0.9)
    repetition_penalty: float = _help(
        "Penalty above 1.0 discourages repeating tokens (small models loop without it).", 1.1
    )
    seed: int = _help("Random seed for sampling.", 0)

    def __post_init__(self) -> None:
        if not 1 <= self.max_new_tokens <= 4096:
            raise ConfigError(f"Expected max_new_tokens between 1 and 4096, got {self.max_new_tokens}.")
        if not 0.0 <= self.temperature <= 2.0:
            raise ConfigError(f"Expected temperature between 0 and 2, got {self.temperature}.")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"Expected top_p in (0, 1], got {self.top_p}.")
        if not 1.0 <= self.repetition_penalty <= 2.0:
            raise ConfigError(
                f"Expected repetition_penalty between 1.0 and 2.0, got {self.repetition_penalty}."
            )

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
