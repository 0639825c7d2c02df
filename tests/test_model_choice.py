"""The workspace's model: chosen once, checked, remembered per workspace, used by the CLI; adapters are
refused on another base model; recommended models say whether they are here; downloads fail plainly offline."""

import json

import pytest

from tests.fakes import FAKE_ID
from workbench import model_choice, models, workshop
from workbench.cli import main
from workbench.config import DEFAULT_GENERATOR
from workbench.errors import BackendError, ConfigError, DataError, MissingDependencyError
from workbench.paths import ADAPTER_META
from workbench.strategies import availability
from workbench.training import adapters_dir


def _adapter(workspace: str, name: str, base_model: str | None) -> str:
    folder = adapters_dir(workspace) / name
    folder.mkdir(parents=True)
    meta = {"name": name, "created_at": 1.0} | ({"base_model": base_model} if base_model else {})
    (folder / ADAPTER_META).write_text(json.dumps(meta))
    return str(folder)


def test_each_workspace_remembers_its_own_model(fake_generator):
    assert model_choice.generator_for("a") == DEFAULT_GENERATOR
    assert model_choice.choose("a", f"  {fake_generator} ") == fake_generator
    assert model_choice.generator_for("a") == fake_generator
    assert model_choice.generator_for("b") == DEFAULT_GENERATOR
    assert model_choice.describe("a")["chosen_at"] and model_choice.describe("b")["chosen_at"] is None


def test_a_model_that_cannot_be_used_is_refused_with_what_was_found(tmp_path):
    with pytest.raises(ConfigError, match="Unknown generator id 'bogus'. Known generators: local:smollm2-135m"):
        model_choice.choose("a", "bogus")
    with pytest.raises(MissingDependencyError, match=r"cannot be used: No model at .*missing\.gguf"):
        model_choice.choose("a", f"hf:{tmp_path / 'missing.gguf'}")
    with pytest.raises(ConfigError, match="empty"):
        model_choice.choose("a", "   ")
    path = str(tmp_path / "model.gguf")
    with pytest.raises(ConfigError, match=f"A local folder or .gguf file is chosen as hf:{path}"):
        model_choice.choose("a", path)
    with pytest.raises(ConfigError, match="Expected compat:BASE_URL#MODEL"):
        model_choice.choose("a", "compat:notaurl")
    assert model_choice.generator_for("a") == DEFAULT_GENERATOR  # nothing was stored


def test_a_stored_choice_the_server_no_longer_allows_falls_back_to_the_default(monkeypatch, tmp_path):
    gguf = models.smollm2_gguf()
    assert gguf is not None
    model_choice.choose("a", f"hf:{gguf}")
    monkeypatch.setenv(workshop.ENV_WORKSHOP, "1")
    assert model_choice.generator_for("a") == DEFAULT_GENERATOR
    with pytest.raises(ConfigError):
        model_choice.choose("a", f"hf:{gguf}")  # workshop mode: nothing typed, packaged models only
    assert model_choice.choose("a", "local:gemma3-270m") == "local:gemma3-270m"  # packaged: allowed
    assert model_choice.generator_for("a") == "local:gemma3-270m"


def test_an_adapter_runs_only_on_the_model_it_was_trained_on(fake_generator):
    gguf = models.smollm2_gguf()
    assert models.canonical_id(f"hf:{gguf}") == DEFAULT_GENERATOR  # the packaged file by its path is that model
    old = _adapter("a", "old", None)  # saved before adapters named their base: trained on the default
    house = _adapter("a", "house", DEFAULT_GENERATOR)
    gemma = _adapter("a", "gemma", "local:gemma3-270m")
    for path in (old, house):
        assert model_choice.adapter_mismatch(model_choice.adapter_base(path), f"hf:{gguf}") is None
    reason = model_choice.adapter_mismatch(model_choice.adapter_base(gemma), DEFAULT_GENERATOR)
    assert reason.startswith("Adapter 'gemma' was trained on local:gemma3-270m, and this workspace's model is "
                             "local:smollm2-135m.")
    plan = availability(["base", "finetuned", "hybrid"], adapter=gemma, model_id=DEFAULT_GENERATOR)
    assert plan["base"] is None and plan["finetuned"] == reason and plan["hybrid"].startswith("No documents")
    assert plan["hybrid"].endswith(reason)
    assert availability(["finetuned"], adapter=gemma, model_id=DEFAULT_GENERATOR,
                        tuned_elsewhere={"finetuned"})["finetuned"] is None  # a server that serves it decides
    assert availability(["finetuned"], adapter=house, model_id=fake_generator)["finetuned"].startswith("Adapter 'house'")
    from workbench.raft import adapter_label

    assert adapter_label(model_choice.adapter_base(gemma), DEFAULT_GENERATOR) == \
        "gemma · for gemma3-270m"
    assert adapter_label(model_choice.adapter_base(old), DEFAULT_GENERATOR) == "old"


def test_recommended_models_say_whether_they_are_here():
    rows = {r["model_id"]: r for r in model_choice.recommended_status()}
    assert rows[DEFAULT_GENERATOR]["present"] and rows[DEFAULT_GENERATOR]["hardware"] == "CPU laptop"
    assert {r["hardware"] for r in rows.values()} == {"CPU laptop", "one GPU"}
    assert all(r["speed"] == "not measured here" or "bench/" in r["speed"] for r in rows.values())
    assert rows["hf:Qwen/Qwen2.5-0.5B-Instruct"]["size"] == "494M parameters, ~1.0 GB in bf16"


def test_a_download_without_the_hub_says_so(monkeypatch):
    import huggingface_hub

    def unreachable(self, *args, **kwargs):
        raise huggingface_hub.errors.OfflineModeIsEnabled("offline") if hasattr(huggingface_hub, "errors") else \
            ConnectionError("unreachable")

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", unreachable)
    with pytest.raises(BackendError, match="cannot be reached from this server") as err:
        model_choice.download("hf:Qwen/Qwen2.5-0.5B-Instruct")
    assert "hf:/path/to/folder" in err.value.fix
    with pytest.raises(ConfigError, match="local path, not a hub model"):
        model_choice.download("hf:/tmp/folder")
    with pytest.raises(ConfigError, match="Expected a hub model id"):
        model_choice.download("local:smollm2-135m")


def test_the_cli_shows_chooses_and_uses_the_workspace_model(fake_generator, capsys):
    assert main(["model", "--workspace", "a"]) == 0
    assert "a: local:smollm2-135m (the default)" in capsys.readouterr().out
    assert main(["model", fake_generator, "--workspace", "a"]) == 0
    assert main(["ask", "Where is my parcel?", "--workspace", "a", "--json"]) == 0
    out = capsys.readouterr().out
    assert f"now answers and trains with {FAKE_ID}" in out and "Echo: Where is my parcel?" in out
    assert main(["model", "nope:x", "--workspace", "a"]) == 2
    assert "Unknown generator id 'nope:x'" in capsys.readouterr().err
    assert main(["model", "--list"]) == 0
    assert "hf:Qwen/Qwen2.5-3B-Instruct" in capsys.readouterr().out


def test_a_download_reports_its_bytes_as_they_arrive():
    from workbench.progress import ListSink

    sink = ListSink()
    bar = model_choice.byte_bar(sink, done_before=100, total=1000, label="model.safetensors", every_s=0.0)(
        total=900, unit="B")
    bar.update(400)
    bar.update(500)
    bar.close()
    assert [(e.step, e.total) for e in sink.events] == [(500, 1000), (1000, 1000)]
    assert sink.events[-1].message == "model.safetensors" and sink.events[-1].metrics["bytes"] == 1000


def test_an_adapter_is_one_record_however_it_is_read(tmp_path):
    """Metadata written by older versions loads as the same record: the defaults fill what it lacks."""
    from workbench.records import Adapter
    from workbench.training import get_adapter, list_adapters, load_adapter

    old = adapters_dir("default") / "old"
    old.mkdir(parents=True)
    (old / ADAPTER_META).write_text(json.dumps({
        "name": "renamed-since", "created_at": 5.0, "wall_s": 12.5, "steps": "not a number",
        "val_questions": [{"messages": [{"role": "system", "content": "Answer in the house style."},
                                        {"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A."}]}]}))
    adapter = load_adapter(old)
    assert adapter == get_adapter("default", "old") == list_adapters("default")[0]
    assert isinstance(adapter, Adapter) and adapter.name == "old"  # the folder names it
    assert adapter.base_model == DEFAULT_GENERATOR and adapter.method == "lora"
    assert adapter.wall_s == 12.5 and adapter.steps is None
    assert adapter.system_prompt == "Answer in the house style."
    assert adapter.val_prompts == [[{"role": "system", "content": "Answer in the house style."},
                                    {"role": "user", "content": "Q?"}]]
    assert "history" not in adapter.details() and adapter.details()["path"] == str(old)
    with pytest.raises(DataError, match="Expected an adapter trained by this workbench"):
        load_adapter(tmp_path)


def test_ask_and_evaluate_report_an_approach_that_failed_and_exit_non_zero(capsys):
    """A server that refuses the connection: the reason and its fix are printed once, and a run with no
    answer is not reported as a success."""
    assert main(["ask", "Where is my parcel?", "--model", "compat:http://127.0.0.1:9/v1#m", "--modes", "base"]) == 1
    captured = capsys.readouterr()
    assert "== Base (base): failed: Could not connect to http://127.0.0.1:9/v1" in captured.err
    assert captured.err.count("Fix:") == 1 and "stored as run" not in captured.out
    assert main(["evaluate", "--model", "compat:http://127.0.0.1:9/v1#m", "--modes", "base", "--limit", "2"]) == 1
    assert "Base (base) failed on 2 question(s); the first: Could not connect" in capsys.readouterr().err
