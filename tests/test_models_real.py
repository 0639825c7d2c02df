"""The real packaged models: load offline, generate, stream, embed; the hub-loading code paths
(``hf:`` and ``st:``) are exercised on the packaged weights."""

import pytest

from workbench import models
from workbench.config import GenerationConfig
from workbench.generation.gguf_files import convert_gguf, gguf_cache_dir, is_converted
from workbench.progress import ListSink

pytestmark = pytest.mark.slow

GREEDY = GenerationConfig(max_new_tokens=24)
QUESTION = [{"role": "user", "content": "Name one colour of the rainbow."}]


@pytest.fixture(scope="module")
def smollm2():
    return models.get_generator("local:smollm2-135m")


def test_packaged_generator_generates_and_streams(smollm2):
    pieces = []
    out = smollm2.generate(QUESTION, GREEDY, on_text=pieces.append)
    assert out.text and out.text == "".join(pieces).strip()
    assert out.usage.tokens_in > 5 and 1 <= out.usage.tokens_out <= 24
    assert 0 < out.ttft_s < out.total_s and out.decode_s >= 0
    assert out.finish_reason in {"stop", "length"}
    assert smollm2.device in {"cpu", "cuda"} and smollm2.tokenizer.eos_token == "<|im_end|>"
    assert "<|im_start|>assistant" in smollm2.render_prompt(QUESTION)


def test_greedy_generation_is_repeatable(smollm2):
    assert smollm2.generate(QUESTION, GREEDY).text == smollm2.generate(QUESTION, GREEDY).text


def test_length_limit_reports_length(smollm2):
    out = smollm2.generate([{"role": "user", "content": "Write a long story about a cat."}],
                           GenerationConfig(max_new_tokens=5))
    assert out.usage.tokens_out == 5 and out.finish_reason == "length"


def test_second_conversion_is_skipped():
    gguf = models.smollm2_gguf()
    assert gguf is not None
    convert_gguf(gguf)  # no-op if already converted by the fixture
    assert is_converted(gguf)
    sink = ListSink()
    assert convert_gguf(gguf, sink) == gguf_cache_dir(gguf)
    assert sink.events == []  # nothing converted the second time


def test_a_conversion_reads_the_gguf_header_once_and_restores_the_readers():
    """transformers reads a GGUF's header for the tokenizer, the config and the weights; during a
    conversion the three share one parse, and each caller gets its own copy of the parsed metadata."""
    import gguf
    import transformers.modeling_gguf_pytorch_utils as hf_gguf

    from workbench.generation.gguf_files import read_header_once

    path = str(models.smollm2_gguf())
    before = gguf.GGUFReader, hf_gguf.load_gguf_checkpoint
    with read_header_once():
        assert gguf.GGUFReader(path) is gguf.GGUFReader(path)
        first, second = (hf_gguf.load_gguf_checkpoint(path, return_tensors=False) for _ in range(2))
        assert first == second and first is not second
        first["config"].pop("model_type")
        assert "model_type" in hf_gguf.load_gguf_checkpoint(path)["config"]
    assert (gguf.GGUFReader, hf_gguf.load_gguf_checkpoint) == before


def test_hf_prefix_loads_a_gguf_file_and_a_folder():
    gguf = models.smollm2_gguf()
    folder = convert_gguf(gguf)
    for model_id in (f"hf:{gguf}", f"hf:{folder}"):
        gen = models.get_generator(model_id)
        assert gen.generate(QUESTION, GenerationConfig(max_new_tokens=3)).usage.tokens_out >= 1
        models.clear_cache("generator", model_id)


def test_hf_prefix_missing_folder_is_a_clear_error(tmp_path):
    from workbench.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="Expected a model folder or a Hugging Face model id"):
        models.get_generator(f"hf:{tmp_path}/nothing-here")


def test_packaged_embedder_and_st_prefix():
    emb = models.get_embedder("local:all-minilm-l6-v2")
    vecs = emb.embed(["return window is 45 days", "refunds within 45 days of delivery", "bicycle chain oil"])
    assert vecs.shape == (3, 384) and emb.dimension == 384 and emb.max_tokens == 256
    sims = vecs @ vecs.T
    assert sims[0, 1] > sims[0, 2]  # a real embedding: related texts are closer
    assert emb.count_tokens("hello world") == 2
    same = models.get_embedder(f"st:{models.minilm_dir()}")
    assert abs(float((same.embed(["hello"]) @ emb.embed(["hello"]).T)[0, 0]) - 1.0) < 1e-4
    models.clear_cache("embedder", f"st:{models.minilm_dir()}")


@pytest.mark.requires_cuda
def test_the_int8_embedder_runs_on_the_cpu_when_the_model_is_on_a_gpu():
    """Torch's dynamic int8 products exist on the CPU only: an int8 index on a GPU machine still embeds."""
    from workbench.embedding import SentenceTransformerEmbedder

    on_gpu = SentenceTransformerEmbedder("local:all-minilm-l6-v2", str(models.minilm_dir()), device="cuda")
    int8 = on_gpu.quantized()
    assert int8.device == "cpu" and on_gpu.device == "cuda"
    vecs = int8.embed(["return window is 45 days", "refunds within 45 days of delivery"])
    assert vecs.shape == (2, 384) and float(vecs[0] @ vecs[1]) > 0.5


def test_doctor_deep_loads_both_models():
    from workbench.doctor import run_doctor

    report = run_doctor(deep=True)
    assert report.ok, report.format()
    gen = next(c for c in report.checks if c.name.startswith("generator"))
    assert "generated" in gen.detail


def test_a_second_packaged_model_answers_trains_and_refuses_the_other_models_adapters():
    """Gemma 3 270M (a base model, from PyPI): chosen for a workspace, it answers with a plain prompt
    format, trains an adapter that names it as its base, answers with that adapter through the CLI, and
    that adapter is refused on the default model."""
    import json

    from tests.conftest import ROOT
    from workbench import model_choice
    from workbench.cli import main
    from workbench.config import DEFAULT_GENERATOR, TrainConfig
    from workbench.pairs import read_pairs
    from workbench.strategies import availability
    from workbench.training import adapters_dir, train_adapter

    gemma = models.PACKAGED["local:gemma3-270m"]
    if models.package_dir(gemma.module) is None:
        pytest.skip(f"{gemma.package} is not installed (make install-dev installs it)")
    gen = models.get_generator(gemma.model_id)
    assert gen.template_note and gen.render_prompt(QUESTION) == f"User: {QUESTION[0]['content']}\n\nAssistant:"
    out = gen.generate(QUESTION, GenerationConfig(max_new_tokens=6))
    assert out.model_id == gemma.model_id and out.usage.tokens_out >= 1

    pairs, _ = read_pairs("t.jsonl", (ROOT / "sample_data" / "training_pairs.jsonl").read_bytes())
    config = TrainConfig(rank=4, alpha=8, max_length=128, batch_size=4, val_fraction=0.0, learning_rate=1e-3,
                         target_modules="q_proj,v_proj")
    meta = train_adapter(pairs[:12], config, workspace="g", name="g", base_model=gemma.model_id, max_steps=2).meta
    folder = adapters_dir("g") / "g"
    assert meta["base_model"] == gemma.model_id and meta["base_hub_id"] == "google/gemma-3-270m"
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == "google/gemma-3-270m"

    model_choice.choose("g", gemma.model_id)
    assert main(["ask", "Do you sell gift cards?", "--workspace", "g", "--modes", "base,finetuned", "--adapter", "g",
                 "--max-new-tokens", "6", "--json"]) == 0
    from workbench.history import list_runs

    answers = list_runs("g")[-1].answers
    assert {a.mode for a in answers} == {"base", "finetuned"} and {a.model_id for a in answers} == {gemma.model_id}
    assert availability(["finetuned"], adapter=str(folder), model_id=DEFAULT_GENERATOR)["finetuned"].startswith(
        "Adapter 'g' was trained on local:gemma3-270m")
    gen.unload_adapter(str(folder))
    models.clear_cache("generator", gemma.model_id)
