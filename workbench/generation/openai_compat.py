"""Generation through the OpenAI chat completions API: OpenAI itself or any compatible server.

Ids: ``openai:MODEL`` (api.openai.com, e.g. ``openai:gpt-4o-mini`` or a fine-tuned ``openai:ft:...``)
and ``compat:BASE_URL#MODEL`` (vLLM, Ollama, llama.cpp server, LM Studio, ``python -m workbench
serve``). Answers stream; time to first token is measured by the base class; token usage comes from
the response (``stream_options.include_usage``), or, when a server does not send it, is estimated
with the local tokenizer and marked as an estimate. 429 and 5xx are retried with exponential
backoff; a bad key, an unknown model, a refused connection and a timeout each raise a
``BackendError`` that says what happened and what to do. The API key never appears in a message.

An ``adapter`` passed to ``generate`` is a *model name* on the server (vLLM ``--lora-modules
name=path`` serves adapters as model names), so the fine-tuned and hybrid modes can run remotely.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any, Callable

from ..config import GenerationConfig
from ..errors import BackendError, ConfigError
from .base import Emit, Execution, Generator, Messages

OPENAI_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}
_KEYISH = re.compile(r"(sk-[A-Za-z0-9_\-*]{4,}|Bearer\s+\S+)")


def parse_compat_id(model_id: str) -> tuple[str, str]:
    """``compat:BASE_URL#MODEL`` -> (base_url, model)."""
    rest = model_id[len("compat:"):]
    if "#" not in rest:
        raise ConfigError(f"Expected compat:BASE_URL#MODEL (e.g. compat:http://127.0.0.1:8000/v1#my-model), "
                          f"got {model_id!r}.")
    base_url, model = rest.rsplit("#", 1)
    if not re.match(r"^https?://", base_url) or not model:
        raise ConfigError(f"Expected compat:BASE_URL#MODEL with an http(s) URL and a model name, got {model_id!r}.")
    return base_url.rstrip("/"), model


def resolve_api_key(explicit: str | None = None, env_var: str = "OPENAI_API_KEY") -> str | None:
    """The key from, in order: the caller (a session's password field), the environment, Streamlit secrets."""
    if explicit:
        return explicit
    if os.environ.get(env_var):
        return os.environ[env_var]
    return _secrets_file_value(env_var)


#: The shared key for an OpenAI-compatible server the operator runs, and the only base URL it is sent to.
COMPAT_KEY_ENV = "WORKBENCH_COMPAT_API_KEY"
COMPAT_URL_ENV = "WORKBENCH_COMPAT_BASE_URL"


def _origin(url: str) -> tuple[str, str, int]:
    from urllib.parse import urlparse

    u = urlparse(url.strip())
    port = u.port or (443 if u.scheme == "https" else 80)
    return u.scheme.lower(), (u.hostname or "").lower(), port


def compat_key_for(base_url: str) -> str | None:
    """The shared compat key, only for the server it was configured for.

    ``WORKBENCH_COMPAT_API_KEY`` goes to the base URL in ``WORKBENCH_COMPAT_BASE_URL`` (same scheme, host
    and port) and to no other: a URL a visitor types never receives the server's key. With no base URL
    configured, the shared key is sent nowhere."""
    key = resolve_api_key(None, COMPAT_KEY_ENV)
    allowed = os.environ.get(COMPAT_URL_ENV) or _secrets_file_value(COMPAT_URL_ENV)
    if not key or not allowed:
        return None
    return key if _origin(base_url) == _origin(allowed) else None


def _secrets_file_value(name: str) -> str | None:
    """``name`` from Streamlit's secrets files (``./.streamlit/secrets.toml``, then ``~/.streamlit/``),
    read directly so the CLI sees the same key as the app."""
    import tomllib
    from pathlib import Path

    for path in (Path.cwd() / ".streamlit" / "secrets.toml", Path.home() / ".streamlit" / "secrets.toml"):
        try:
            value = tomllib.loads(path.read_text(encoding="utf-8")).get(name)
        except (OSError, ValueError):
            continue
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def redact(text: str, key: str | None) -> str:
    """``text`` without the API key or anything that looks like one."""
    if key:
        text = text.replace(key, "[redacted]")
    return _KEYISH.sub("[redacted]", text)


class OpenAICompatGenerator(Generator):
    """A model behind an OpenAI-compatible chat completions endpoint."""

    def __init__(self, model_id: str, base_url: str, model: str, api_key: str | None = None, *,
                 timeout_s: float = 60.0, retries: int = 3, backoff_s: float = 0.5, context_length: int = 128_000,
                 local_tokenizer: Callable[[], Path | None] | None = None):
        """``local_tokenizer``: where to find the packaged model's tokenizer folder (a function, because
        it appears only once the local model has been converted); without one, ~4 characters a token."""
        from openai import OpenAI

        self.model_id, self.base_url, self.model = model_id, base_url, model
        self._key = api_key
        self.retries, self.backoff_s, self.timeout_s = retries, backoff_s, timeout_s
        self.context_length = context_length
        # Our own retries (with the reasons shown), not the client's silent ones.
        self.client = OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s, max_retries=0)
        self.load_s = 0.0
        self._tokenizer: Any = None
        self._local_tokenizer = local_tokenizer

    # -- tokens (estimates with the local tokenizer) ----------------------------------------------
    def count_tokens(self, text: str) -> int:
        if self._tokenizer is None:
            try:
                from transformers import AutoTokenizer

                folder = self._local_tokenizer() if self._local_tokenizer else None
                if folder is None:
                    raise FileNotFoundError("no converted local tokenizer")
                self._tokenizer = AutoTokenizer.from_pretrained(str(folder))
            except Exception:  # no local tokenizer: about 4 characters per token
                self._tokenizer = False
        if self._tokenizer is False:
            return max(1, len(text) // 4)
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def _estimate_prompt(self, messages: Messages) -> int:
        return sum(self.count_tokens(m["content"]) + 4 for m in messages) + 2

    # -- calls ---------------------------------------------------------------------------------------
    def _execute(self, messages: Messages, config: GenerationConfig, emit: Emit, adapter: str | None = None
                 ) -> Execution:
        model = adapter or self.model
        kwargs: dict[str, Any] = dict(model=model, messages=messages, max_tokens=config.max_new_tokens,
                                      temperature=config.temperature, stream=True,
                                      stream_options={"include_usage": True})
        if config.temperature > 0:
            kwargs.update(top_p=config.top_p, seed=config.seed)
        attempt = 0
        while True:
            sent: list[str] = []
            try:
                return self._stream(kwargs, messages, emit, sent)
            except Exception as exc:  # map every client error to a message for the user
                status = getattr(exc, "status_code", None)
                retryable = status in RETRY_STATUS or type(exc).__name__ in {"APITimeoutError", "APIConnectionError"}
                if retryable and not sent and attempt < self.retries and type(exc).__name__ != "APIConnectionError":
                    attempt += 1
                    time.sleep(self.backoff_s * 2 ** (attempt - 1))
                    continue
                raise self._error(exc, model, attempt) from None

    def _stream(self, kwargs: dict[str, Any], messages: Messages, emit: Emit, sent: list[str]) -> Execution:
        stream = self.client.chat.completions.create(**kwargs)
        usage, finish = None, "stop"
        for chunk in stream:
            if getattr(chunk, "usage", None):
                usage = chunk.usage
            for choice in chunk.choices or []:
                piece = getattr(choice.delta, "content", None)
                if piece:
                    sent.append(piece)
                    emit(piece)
                if choice.finish_reason:
                    finish = "length" if choice.finish_reason == "length" else "stop"
        if usage is not None and usage.prompt_tokens is not None:
            return Execution(int(usage.prompt_tokens), int(usage.completion_tokens or 0), finish, estimated=False)
        # The server sent no usage: estimate both sides with the local tokenizer, and say so.
        return Execution(self._estimate_prompt(messages), self.count_tokens("".join(sent)), finish, estimated=True)

    def _error(self, exc: Exception, model: str, attempts: int) -> BackendError:
        name = type(exc).__name__
        status = getattr(exc, "status_code", None)
        where = f"{self.base_url} (model {model!r})"
        detail = redact(str(getattr(exc, "message", None) or exc), self._key)[:300]
        if status == 401 or name == "AuthenticationError":
            return BackendError(f"The server at {self.base_url} refused the API key (401).",
                                fix="Check the key: set OPENAI_API_KEY, add it to .streamlit/secrets.toml, or paste "
                                    "it on the Settings page.")
        if status == 403:
            return BackendError(f"The server at {self.base_url} denied access (403): {detail}",
                                fix="Check that this key may use this model.")
        if status == 404 or name == "NotFoundError":
            return BackendError(f"The server at {self.base_url} does not know model {model!r} (404).",
                                fix="Use a model name the server lists: Settings page, Check connection.")
        if name == "APITimeoutError":
            return BackendError(f"No answer from {where} within {self.timeout_s:g} s"
                                f"{f' ({attempts + 1} tries)' if attempts else ''}.",
                                fix="Check that the server is up and not overloaded, or raise the timeout.")
        if name == "APIConnectionError":
            return BackendError(f"Could not connect to {self.base_url}: the connection was refused or the host "
                                "is unreachable.", fix="Start the server, or correct the URL (host, port, /v1).")
        if status == 429:
            return BackendError(f"{where} is rate-limiting requests (429) after {attempts + 1} tries.",
                                fix="Wait a moment, lower the request rate, or raise your quota.")
        if status is not None and status >= 500:
            return BackendError(f"{where} failed with a server error ({status}) after {attempts + 1} tries: {detail}",
                                fix="Try again later; check the server's log.")
        return BackendError(f"{where} returned an error ({name}{f' {status}' if status else ''}): {detail}")

    def list_models(self) -> list[str]:
        try:
            return sorted(m.id for m in self.client.models.list())
        except Exception as exc:
            raise self._error(exc, self.model, 0) from None

    def check(self) -> dict[str, Any]:
        """Latency of a models list and of a one-token answer, and the models the server lists."""
        started = time.perf_counter()
        listed = self.list_models()
        list_s = time.perf_counter() - started
        started = time.perf_counter()
        answer = self.generate([{"role": "user", "content": "Say OK."}], GenerationConfig(max_new_tokens=4))
        return {"models": listed, "list_ms": list_s * 1000, "answer_ms": (time.perf_counter() - started) * 1000,
                "answer": answer.text, "model_listed": self.model in listed}
