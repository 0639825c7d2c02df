"""The OpenAI-compatible backend with the real ``openai`` client against servers on loopback: our own
server in front of the packaged model (streaming, usage, adapters as model names), and a small
deterministic server for each error (401, 404, 429 then success, 500, timeout, refused connection,
no usage). The API key never appears in a message, a stored run or a log."""

import asyncio
import json
import logging
import socket

import pytest

from tests.fakes import EchoGenerator
from workbench.config import GenerationConfig
from workbench.errors import BackendError
from workbench.generation.openai_compat import OpenAICompatGenerator, parse_compat_id, redact
from workbench.serve import BackgroundServer, create_app
from workbench.strategies import ComparisonSpec

KEY = "sk-test-0123456789abcdefSECRET"
Q = [{"role": "user", "content": "Name one colour of the rainbow."}]


def test_compat_ids_are_parsed_and_checked():
    assert parse_compat_id("compat:http://127.0.0.1:8000/v1#my-model") == ("http://127.0.0.1:8000/v1", "my-model")
    with pytest.raises(Exception, match="compat:BASE_URL#MODEL"):
        parse_compat_id("compat:http://127.0.0.1:8000/v1")
    with pytest.raises(Exception, match="http"):
        parse_compat_id("compat:ftp://x#m")
    assert redact(f"Incorrect API key provided: {KEY}", KEY) == "Incorrect API key provided: [redacted]"
    assert "sk-abc" not in redact("key sk-abc1234****5678 is wrong", None)


def test_echo_server_streams_serves_adapters_and_checks_the_key(tmp_path):
    app = create_app(EchoGenerator(), model_name="echo", adapters={"house": str(tmp_path)}, api_key=KEY)
    with BackgroundServer(app) as server:
        gen = OpenAICompatGenerator("compat:test", server.base_url, "echo", KEY)
        pieces = []
        out = gen.generate(Q, GenerationConfig(max_new_tokens=20), on_text=pieces.append)
        assert out.text == "Echo: Name one colour of the rainbow." == "".join(pieces).strip()
        assert out.usage.tokens_out == 7 and not out.usage.estimated and out.ttft_s > 0
        assert gen.generate(Q, adapter="house").text.startswith("Echo (adapted):")  # adapter = model name
        assert gen.list_models() == ["echo", "house"]
        with pytest.raises(BackendError, match="does not know model 'nope'"):
            OpenAICompatGenerator("compat:test", server.base_url, "nope", KEY).generate(Q)
        with pytest.raises(BackendError, match=r"refused the API key \(401\)") as info:
            OpenAICompatGenerator("compat:test", server.base_url, "echo", "sk-wrong-key-123456").generate(Q)
        assert "sk-wrong" not in str(info.value) and KEY not in str(info.value)


@pytest.mark.slow
def test_the_packaged_model_served_over_http_answers_like_the_local_one():
    from workbench import models

    local = models.get_generator("local:smollm2-135m")
    config = GenerationConfig(max_new_tokens=16)
    direct = local.generate(Q, config)
    with BackgroundServer(create_app(local, model_name="smollm2")) as server:
        remote = OpenAICompatGenerator("compat:smollm2", server.base_url, "smollm2")
        out = remote.generate(Q, config)
    assert out.text == direct.text and out.usage == direct.usage
    assert out.model_id == "compat:smollm2"


def _stub(behaviour):
    """A deterministic OpenAI-like server: ``behaviour(call_no)`` -> (status, body) or 'sleep' or 'no-usage'."""
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    calls = {"n": 0}

    async def chat(request):
        calls["n"] += 1
        action = behaviour(calls["n"])
        if action == "sleep":
            await asyncio.sleep(3)
        if isinstance(action, tuple):
            status, message = action
            return JSONResponse({"error": {"message": message, "type": "x"}}, status_code=status)

        async def events():
            for word in ["Hello", " there"]:
                yield "data: " + json.dumps({"id": "1", "object": "chat.completion.chunk", "created": 0, "model": "m",
                                             "choices": [{"index": 0, "delta": {"content": word},
                                                          "finish_reason": None}]}) + "\n\n"
            yield "data: " + json.dumps({"id": "1", "object": "chat.completion.chunk", "created": 0, "model": "m",
                                         "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}) + "\n\n"
            if action != "no-usage":
                yield "data: " + json.dumps({"id": "1", "object": "chat.completion.chunk", "created": 0, "model": "m",
                                             "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 2,
                                                                      "total_tokens": 13}}) + "\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])]), calls


def test_rate_limits_are_retried_then_succeed():
    app, calls = _stub(lambda n: (429, "slow down") if n < 3 else "ok")
    with BackgroundServer(app) as server:
        out = OpenAICompatGenerator("compat:x", server.base_url, "m", KEY, backoff_s=0.01).generate(Q)
    assert out.text == "Hello there" and calls["n"] == 3 and out.usage.tokens_in == 11


def test_each_error_is_a_clear_message_without_the_key():
    cases = [
        (lambda n: (500, f"boom with {KEY}"), r"server error \(500\) after 3 tries"),
        (lambda n: (429, "slow down"), r"rate-limiting requests \(429\) after 3 tries"),
        (lambda n: (404, "no such model"), r"does not know model 'm' \(404\)"),
        (lambda n: (401, f"Incorrect API key provided: {KEY}"), r"refused the API key \(401\)"),
        (lambda n: "sleep", r"No answer from .* within 0.5 s"),
    ]
    for behaviour, expected in cases:
        app, _ = _stub(behaviour)
        with BackgroundServer(app) as server:
            gen = OpenAICompatGenerator("compat:x", server.base_url, "m", KEY, timeout_s=0.5, retries=2, backoff_s=0.01)
            with pytest.raises(BackendError, match=expected) as info:
                gen.generate(Q)
            assert KEY not in str(info.value) and KEY not in (info.value.fix or "")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BackendError, match="Could not connect to http://127.0.0.1:.*refused"):
        OpenAICompatGenerator("compat:x", f"http://127.0.0.1:{port}/v1", "m", KEY).generate(Q)


def test_missing_usage_is_estimated_and_marked():
    app, _ = _stub(lambda n: "no-usage")
    with BackgroundServer(app) as server:
        out = OpenAICompatGenerator("compat:x", server.base_url, "m").generate(Q)
    assert out.text == "Hello there" and out.usage.estimated and out.usage.tokens_in > 0


def test_the_key_is_never_stored_or_logged(workbench_home, caplog):
    from workbench.history import export_json, list_runs, run_and_record

    caplog.set_level(logging.DEBUG)
    app = create_app(EchoGenerator(), model_name="echo", api_key=KEY)
    with BackgroundServer(app) as server:
        gen = OpenAICompatGenerator("compat:test", server.base_url, "echo", KEY)
        run_and_record("Where is my parcel?", ComparisonSpec(("base",), gen), workspace="k")
    stored = "".join(p.read_text() for p in workbench_home.rglob("*") if p.is_file() and p.suffix in {".json", ".jsonl"})
    assert stored and KEY not in stored
    assert KEY.encode() not in export_json(list_runs("k"))
    assert KEY not in caplog.text


def test_per_mode_backends_and_a_failing_backend_leaves_the_others_answering(workbench_home, tmp_path):
    from workbench.history import run_and_record
    from workbench.strategies import run_comparison

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    app = create_app(EchoGenerator(), model_name="echo", adapters={"house": str(tmp_path)})
    with BackgroundServer(app) as server:
        remote = OpenAICompatGenerator("compat:echo", server.base_url, "echo")
        broken = OpenAICompatGenerator("compat:dead", f"http://127.0.0.1:{dead}/v1", "m")
        result = run_comparison("Where is my parcel?", ComparisonSpec(
            ("base", "finetuned", "hybrid"), EchoGenerator(), backends={"finetuned": (remote, "house"), "base": (broken, None)}))
        # No local adapter, but the remote one serves the fine-tuned mode; hybrid (local, no index) is unavailable.
        assert [a.mode for a in result.answers] == ["finetuned"]
        assert result.answers[0].text.startswith("Echo (adapted):") and result.answers[0].model_id == "compat:echo"
        assert "Could not connect" in result.errors["base"] and "hybrid" in result.unavailable
        run = run_and_record("Where is my parcel?", ComparisonSpec(
            ("base", "finetuned"), EchoGenerator(), backends={"finetuned": (remote, "house"), "base": (broken, None)}),
            workspace="b")
    assert run.errors["base"].startswith("Could not connect") and run.answers[0].mode == "finetuned"
    assert run.settings["backends"]["finetuned"] == {"model_id": "compat:echo", "adapter": "house"}


def test_the_key_is_read_from_the_secrets_file(tmp_path, monkeypatch):
    from workbench.generation.openai_compat import resolve_api_key

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resolve_api_key() is None
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "secrets.toml").write_text(f'OPENAI_API_KEY = "{KEY}"\n')
    assert resolve_api_key() == KEY and resolve_api_key("sk-explicit-123") == "sk-explicit-123"


def test_evaluation_runs_an_approach_on_a_remote_backend(workbench_home, tmp_path):
    from workbench.eval_runs import evaluate
    from workbench.evaluation import TestItem

    app = create_app(EchoGenerator(), model_name="echo", adapters={"house": str(tmp_path)})
    with BackgroundServer(app) as server:
        remote = OpenAICompatGenerator("compat:echo", server.base_url, "echo")
        run = evaluate([TestItem("q1", "Where is my parcel?", "On its way.")],
                       ComparisonSpec(("base", "finetuned"), EchoGenerator(), backends={"finetuned": (remote, "house")}),
                       workspace="b")
    by_mode = {r.mode: r for r in run.results}
    assert by_mode["finetuned"].model_id == "compat:echo" and by_mode["finetuned"].text.startswith("Echo (adapted)")
    assert by_mode["base"].model_id == "fake:echo"
    assert run.config["backends"] == {"finetuned": {"model_id": "compat:echo", "adapter": "house"}}


def test_compat_embeddings_build_an_index_and_count_their_tokens(workbench_home):
    from workbench import models, samples
    from workbench.config import IndexConfig
    from workbench.pricing import default_prices, embedding_cost
    from workbench.documents import parse_uploads
    from workbench.index import close_all, open_index
    from workbench.retrieval import retrieve

    local = models.get_embedder()
    app = create_app(EchoGenerator(), model_name="echo", embedder=local, embedder_name="minilm")
    with BackgroundServer(app) as server:
        model_id = f"compat:{server.base_url}#minilm"
        close_all()
        index = open_index("remote-embed", IndexConfig(embedder_id=model_id, precision="fp32"))
        report = index.add_documents(parse_uploads([d for d in samples.sample_documents()
                                                    if d[0] == "returns-policy.md"])[0])
        assert report.chunks_added > 0 and report.embed_tokens > 0
        hits = retrieve(index, "How many days do I have to return a product?").hits
        assert hits and hits[0].chunk.doc_name == "returns-policy.md"
        remote = models.get_embedder(model_id)
        a, b = remote.embed(["Return within 45 days"])[0], local.embed(["Return within 45 days"])[0]
        assert float((a * b).sum()) > 0.999  # the same model behind HTTP
        close_all()
        models.unregister("embedder", model_id)
    table = default_prices()
    assert embedding_cost(table, "openai:text-embedding-3-small", 1_000_000).usd == 0.02
    assert embedding_cost(table, "local:all-minilm-l6-v2", 10**6).usd == 0.0
    assert embedding_cost(table, "openai:new", 5).usd is None


def test_the_shared_key_goes_only_to_the_server_it_was_configured_for(monkeypatch):
    """Two loopback servers that both require the shared key: the configured one receives it, a URL typed
    by a visitor does not (its request is refused for want of a key), and a session's OpenAI key is
    never sent to a compat server."""
    from workbench import models

    app = lambda: create_app(EchoGenerator(), model_name="echo", api_key=KEY)  # noqa: E731
    with BackgroundServer(app()) as operators, BackgroundServer(app()) as typed:
        monkeypatch.setenv("WORKBENCH_COMPAT_API_KEY", KEY)
        monkeypatch.setenv("WORKBENCH_COMPAT_BASE_URL", operators.base_url)
        ok = models.remote_generator(f"compat:{operators.base_url}#echo").generate(Q)
        assert ok.text.startswith("Echo:")
        with pytest.raises(BackendError, match=r"\(401\)"):
            models.remote_generator(f"compat:{typed.base_url}#echo").generate(Q)
        # A session's own OpenAI key is OpenAI's alone.
        with pytest.raises(BackendError, match=r"\(401\)"):
            models.remote_generator(f"compat:{typed.base_url}#echo", api_key=KEY).generate(Q)
        # Without a configured base URL the shared key goes nowhere.
        monkeypatch.delenv("WORKBENCH_COMPAT_BASE_URL")
        with pytest.raises(BackendError, match=r"\(401\)"):
            models.remote_generator(f"compat:{operators.base_url}#echo").generate(Q)


def test_workshop_mode_uses_only_the_operators_servers(workbench_home, monkeypatch):
    """In workshop mode a typed URL, a local path, a hub id or a Chroma address that the operator did not
    list is refused before any connection; the listed server works, and gets the shared key."""
    import json

    from workbench import models, paths, servers
    from workbench.config import IndexConfig
    from workbench.errors import ConfigError
    from workbench.index import close_all, open_index

    app = lambda: create_app(EchoGenerator(), model_name="echo", api_key=KEY)  # noqa: E731
    with BackgroundServer(app()) as operators, BackgroundServer(app()) as typed:
        listed = f"compat:{operators.base_url}#echo"
        monkeypatch.setenv("WORKBENCH_WORKSHOP", "1")
        monkeypatch.setenv("WORKBENCH_COMPAT_API_KEY", KEY)
        monkeypatch.setenv("WORKBENCH_COMPAT_BASE_URL", operators.base_url)
        (paths.home() / servers.SERVERS_FILE).write_text(json.dumps({"generators": {"Team server": listed}}))
        assert [s.name for s in servers.allowed("generator")] == ["Team server"]
        assert models.remote_generator(listed).generate(Q).text.startswith("Echo:")
        for refused in (f"compat:{typed.base_url}#echo", "openai:gpt-4o-mini"):
            with pytest.raises(ConfigError, match="only the models the operator listed") as info:
                models.remote_generator(refused, api_key=KEY)
            assert "Team server" in info.value.fix
        for refused in ("hf:/etc", "hf:HuggingFaceTB/SmolLM2-360M-Instruct"):
            with pytest.raises(ConfigError, match="not one"):
                models.get_generator(refused)
        for refused in (f"compat:{typed.base_url}#minilm", "st:/etc"):
            with pytest.raises(ConfigError, match="not one"):
                models.get_embedder(refused)
        close_all()
        with pytest.raises(ConfigError, match="only the Chroma servers the operator listed"):
            open_index("mine", IndexConfig(chroma_url="http://127.0.0.1:9"))
        assert models.get_embedder() is not None and models.check_allowed("generator", models.DEFAULT_GENERATOR) is None
        # Outside workshop mode one person may type any server (the shared key still stays with its own).
        monkeypatch.delenv("WORKBENCH_WORKSHOP")
        servers.check_model("generator", f"compat:{typed.base_url}#echo")
    # A damaged list is a clear error, not a silent "no servers".
    monkeypatch.setenv(servers.ENV_SERVERS, '{"generators": ["not", "a map"]}')
    with pytest.raises(ConfigError, match="map names to ids"):
        servers.allowed()
    monkeypatch.setenv(servers.ENV_SERVERS, '{"chroma": {"x": "ftp://h"}}')
    with pytest.raises(ConfigError, match="http\\(s\\) URL"):
        servers.allowed()
    monkeypatch.setenv(servers.ENV_SERVERS, str(workbench_home / "missing.json"))
    with pytest.raises(ConfigError, match="no file"):
        servers.allowed()


def test_backends_are_resolved_in_the_core(fake_generator):
    """One place decides local or remote, and which adapter each approach runs with."""
    from workbench import models
    from workbench.strategies import resolve_backends

    ids = {"base": "", "rag": fake_generator, "finetuned": fake_generator, "hybrid": "compat:http://127.0.0.1:9/v1#m"}
    backends = resolve_backends(ids, adapter_path="/adapters/house", remote_adapter="house-lora", session_key=KEY)
    assert set(backends) == {"rag", "finetuned", "hybrid"}  # empty: the local model, not a backend
    assert backends["rag"] == (models.get_generator(fake_generator), None)
    assert backends["finetuned"] == (models.get_generator(fake_generator), "/adapters/house")
    remote, adapter = backends["hybrid"]
    assert isinstance(remote, OpenAICompatGenerator) and adapter == "house-lora"
    assert remote._key != KEY  # a session's OpenAI key never goes to a compat server
    assert models.is_remote("openai:gpt-4o-mini") and not models.is_remote(fake_generator)
    assert not models.is_remote("no-such-model")
