"""A deterministic fake generator, registered through the real registry, for tests that are about
the UI or the bookkeeping rather than about generation itself."""

from __future__ import annotations

from workbench import models
from workbench.generation.base import Execution, Generator
from workbench.models import Location, ModelEntry

FAKE_ID = "fake:echo"


class EchoGenerator(Generator):
    """Answers 'Echo: <last user message>' word by word; one token per word."""

    model_id = FAKE_ID
    load_s = 0.0

    def _execute(self, messages, config, emit, adapter=None):
        question = [m for m in messages if m["role"] == "user"][-1]["content"]
        prefix = "Echo (adapted):" if adapter else "Echo:"
        words = f"{prefix} {question}".split()[: config.max_new_tokens]
        for i, word in enumerate(words):
            emit(word if i == 0 else " " + word)
        prompt_tokens = sum(self.count_tokens(m["content"]) for m in messages)
        return Execution(prompt_tokens, len(words), "stop")

    def count_tokens(self, text: str) -> int:
        return len(text.split())


def register_fake() -> None:
    models.register(ModelEntry(FAKE_ID, "generator", "deterministic echo (tests)",
                               lambda model_id, progress: EchoGenerator(),
                               lambda model_id: Location(True, "in memory")))
