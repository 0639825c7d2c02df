"""An OpenAI-compatible server for a local model and a workspace's adapters.

    python -m workbench serve --workspace default --port 8000

``GET /v1/models`` lists the base model and every adapter of the workspace; ``POST
/v1/chat/completions`` answers with the base model, or with an adapter when its name is given as
the model (like vLLM's ``--lora-modules``), streamed (server-sent events) or not, with token usage.
Other tools (and this workbench's own ``compat:`` backend) can then use the local model and its
adapters over HTTP. It binds to 127.0.0.1 unless told otherwise; ``--api-key`` (or the
``WORKBENCH_SERVE_API_KEY`` environment variable) makes it require ``Authorization: Bearer KEY``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import queue
import threading
import time
import uuid
from typing import Any

from .config import GenerationConfig
from .errors import WorkbenchError
from .generation.base import Generator, validate_messages


def _error(status: int, message: str, kind: str, code: str | None = None) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse({"error": {"message": message, "type": kind, "code": code}}, status_code=status)


def create_app(generator: Generator, *, model_name: str, adapters: dict[str, str] | None = None,
               api_key: str | None = None, adapter_lister: Any = None, embedder: Any = None,
               embedder_name: str | None = None) -> Any:
    """A Starlette app serving ``generator`` as ``model_name`` and each adapter (name -> folder) by its name.

    ``adapter_lister()`` (optional) returns the current adapters on every request, so adapters trained
    after the server started are served too."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    def current_adapters() -> dict[str, str]:
        return adapter_lister() if adapter_lister is not None else dict(adapters or {})

    def authorised(request: Request) -> bool:
        if not api_key:
            return True
        header = request.headers.get("authorization", "")
        return hmac.compare_digest(header.encode(), f"Bearer {api_key}".encode())

    async def models(request: Request) -> Any:
        if not authorised(request):
            return _error(401, "Invalid API key.", "invalid_request_error", "invalid_api_key")
        created = int(time.time())
        ids = [model_name, *current_adapters(), *([embedder_name] if embedder is not None else [])]
        return JSONResponse({"object": "list", "data": [{"id": i, "object": "model", "created": created,
                                                         "owned_by": "workbench"} for i in ids]})

    async def chat(request: Request) -> Any:
        if not authorised(request):
            return _error(401, "Invalid API key.", "invalid_request_error", "invalid_api_key")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "Expected a JSON body.", "invalid_request_error")
        if not isinstance(body, dict):
            return _error(400, "Expected a JSON object.", "invalid_request_error")
        model = body.get("model")
        served = current_adapters()
        if model != model_name and model not in served:
            return _error(404, f"The model {model!r} does not exist. Served: {', '.join([model_name, *served])}.",
                          "invalid_request_error", "model_not_found")
        messages = body.get("messages")
        try:
            validate_messages(messages)
            config = GenerationConfig(max_new_tokens=int(body.get("max_tokens") or body.get("max_completion_tokens")
                                                         or 256),
                                      temperature=float(body.get("temperature") or 0.0),
                                      top_p=float(body.get("top_p") or 0.9), seed=int(body.get("seed") or 0))
        except (WorkbenchError, TypeError, ValueError) as exc:
            return _error(400, str(exc), "invalid_request_error")
        adapter = served.get(model) if model != model_name else None
        rid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None, usage: dict[str, int] | None = None) -> str:
            payload: dict[str, Any] = {"id": rid, "object": "chat.completion.chunk", "created": created,
                                       "model": model, "choices": [] if usage else
                                       [{"index": 0, "delta": delta, "finish_reason": finish}]}
            if usage:
                payload["usage"] = usage
            return f"data: {json.dumps(payload)}\n\n"

        if body.get("stream"):
            pieces: queue.Queue[Any] = queue.Queue()
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))

            def work() -> None:
                try:
                    result = generator.generate(messages, config, on_text=pieces.put, adapter=adapter)
                    pieces.put(result)
                except Exception as exc:  # reported in the stream
                    pieces.put(exc)

            threading.Thread(target=work, daemon=True).start()

            async def events() -> Any:
                yield chunk({"role": "assistant", "content": ""})
                while True:
                    item = await asyncio.to_thread(pieces.get)
                    if isinstance(item, str):
                        yield chunk({"content": item})
                    elif isinstance(item, Exception):
                        yield f"data: {json.dumps({'error': {'message': str(item), 'type': 'server_error'}})}\n\n"
                        break
                    else:
                        yield chunk({}, item.finish_reason)
                        if include_usage:
                            yield chunk({}, usage=_usage(item))
                        break
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        try:
            result = await asyncio.to_thread(generator.generate, messages, config, None, adapter)
        except Exception as exc:
            return _error(500, f"Generation failed: {exc}", "server_error")
        return JSONResponse({"id": rid, "object": "chat.completion", "created": created, "model": model,
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": result.text},
                                          "finish_reason": result.finish_reason}], "usage": _usage(result)})

    async def embeddings(request: Request) -> Any:
        if not authorised(request):
            return _error(401, "Invalid API key.", "invalid_request_error", "invalid_api_key")
        if embedder is None:
            return _error(404, "This server has no embedding model.", "invalid_request_error", "model_not_found")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "Expected a JSON body.", "invalid_request_error")
        if body.get("model") != embedder_name:
            return _error(404, f"The model {body.get('model')!r} does not exist. Served: {embedder_name}.",
                          "invalid_request_error", "model_not_found")
        texts = body.get("input")
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return _error(400, "Expected 'input' to be a text or a list of texts.", "invalid_request_error")
        vectors = await asyncio.to_thread(embedder.embed, texts)
        tokens = sum(embedder.count_tokens(t) for t in texts)
        return JSONResponse({"object": "list", "model": embedder_name,
                             "data": [{"object": "embedding", "index": i, "embedding": [float(x) for x in v]}
                                      for i, v in enumerate(vectors)],
                             "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})

    return Starlette(routes=[Route("/v1/models", models), Route("/v1/chat/completions", chat, methods=["POST"]),
                             Route("/v1/embeddings", embeddings, methods=["POST"])])


def _usage(result: Any) -> dict[str, int]:
    return {"prompt_tokens": result.usage.tokens_in, "completion_tokens": result.usage.tokens_out,
            "total_tokens": result.usage.total}


def workspace_adapters(workspace: str, model_id: str | None = None) -> dict[str, str]:
    """name -> folder of the workspace's adapters (only those trained on ``model_id`` when given: an
    adapter runs only on its own base model)."""
    from .model_choice import adapter_mismatch
    from .training import list_adapters

    return {a.name: a.path for a in list_adapters(workspace)
            if model_id is None or adapter_mismatch(a, model_id) is None}


class BackgroundServer:
    """Runs an app with uvicorn in a thread (tests, and the app's own checks)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0):
        import socket

        import uvicorn

        if port == 0:
            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        self.host, self.port = host, port
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def __enter__(self) -> "BackgroundServer":
        self.thread.start()
        deadline = time.time() + 20
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("the server did not start in 20 s")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
