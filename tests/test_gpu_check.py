"""bench/gpu_check.sh runs everywhere: without CUDA it says so, leaves the GPU figures empty and runs
its steps (training, the four approaches, an evaluation) at smoke size on the CPU."""

import json
import os
import subprocess

import pytest

from tests.conftest import ROOT, SHARED_MODELS

pytestmark = pytest.mark.slow


def test_gpu_check_runs_its_cpu_safe_parts_and_skips_cuda_with_a_message(tmp_path):
    import torch

    out = tmp_path / "gpu.json"
    env = dict(os.environ, WORKBENCH_MODELS_DIR=str(SHARED_MODELS), WORKBENCH_HOME=str(tmp_path / "home"))
    proc = subprocess.run([str(ROOT / "bench" / "gpu_check.sh"), "--json", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert figures["compare4_modes_answered"] == ["base", "finetuned", "hybrid", "rag"]
    keys = ("qlora_train_s", "qlora_peak_mem_gb", "decode_tok_s_gpu", "compare4_wall_s_gpu")
    if torch.cuda.is_available():
        assert figures["cuda"] and figures["train_method"] == "qlora" and all(figures[k] > 0 for k in keys)
    else:
        assert "No CUDA GPU on this machine" in proc.stdout
        assert figures["cuda"] is False and all(figures[k] is None for k in keys)
        assert figures["train_method"] == "lora" and figures["eval_questions"] == 2
        assert {"correct_base", "correct_rag", "correct_finetuned", "correct_hybrid"} <= set(figures)
