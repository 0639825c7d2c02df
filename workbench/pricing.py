"""What one answer cost: the workspace's price table, its hardware rate, and the arithmetic.

Every page and export prices through here (``pricing_for(workspace)`` then ``Pricing.cost(answer)``),
so one stored answer has one price everywhere:

- Local models: the measured seconds of the machine that answered, divided by the chosen hardware's
  stated speed-up over that machine, times its $/hour. Answers decoded in one batch share the
  machine, so each is charged its own retrieval and prompt time plus its share of the generation.
  A hardware row without a stated speed-up prices nothing (CPU-measured seconds are never silently
  priced at a GPU's rate as if it were no faster).
- Remote API models: tokens times the model's $ per million tokens from the table.
- A price that is not known is *unknown*, never $0.

The default API prices come from the ``genai-prices`` package (a maintained, dated price list that
works offline; its version is shown beside each row); the user's edits on the Costs page are kept on
top of it, per workspace. The monthly projection built on these prices lives in ``costs``.

Longer than 450 lines because the table's defaults (with their sources), its validation and the rate
and answer prices read one another's columns; split, a new column would have to be added in two places.
"""

from __future__ import annotations

import copy
import functools
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from .api_tokens import api_tokens
from .errors import DataError
from .paths import workspace_dir
from .records import Answer
from .store import atomic_write_json, read_json

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Cost:
    """One answer's cost."""

    usd: float | None
    """Dollars; None when a price it needs is unknown."""
    basis: str
    """How it was computed, in words."""


# == The price table ==================================================================================
# One table per workspace, edited on the Costs page. Every default row carries where its numbers come
# from and when they were published; a row the user changed or added is marked as such. An empty cell
# means "unknown": a cost that needs it is shown as unknown, never as $0.

#: category -> (title, key column, {column: (header, unit, upper bound of a sane value)})
PRICE_COLUMNS: dict[str, tuple[str, str, dict[str, tuple[str, str, float]]]] = {
    "api": ("API models", "model", {
        "input_per_m": ("Input $ / 1M tokens", "$", 1000.0),
        "output_per_m": ("Output $ / 1M tokens", "$", 1000.0),
        "ft_input_per_m": ("Fine-tuned input $ / 1M", "$", 1000.0),
        "ft_output_per_m": ("Fine-tuned output $ / 1M", "$", 1000.0),
        "training_per_m": ("Fine-tuning $ / 1M training tokens", "$", 10000.0),
    }),
    "embedding": ("Embedding models", "model", {"per_m": ("$ / 1M tokens", "$", 1000.0)}),
    "hardware": ("Hardware", "name", {
        "per_hour": ("$ / hour", "$", 1000.0),
        "speedup": ("Speed-up over the measuring machine", "x", 1000.0),
    }),
    "hosting": ("Hosting", "name", {"per_month": ("$ / month", "$", 1_000_000.0)}),
}
#: Free-text columns kept beside the numbers (besides ``as_of`` and ``source``).
TEXT_COLUMNS: dict[str, tuple[str, ...]] = {"hardware": ("speedup_source",)}

_OPENAI = "OpenAI pricing page (openai.com/api/pricing) when published"

#: API models listed by default, with the prices genai-prices does not carry (fine-tuning, from
#: OpenAI's pricing page when each was published). Input and output prices come from genai-prices.
_API_MODELS: dict[str, dict[str, Any]] = {
    "openai:gpt-4o-mini": {"ft_input_per_m": 0.30, "ft_output_per_m": 1.20, "training_per_m": 3.00,
                           "as_of": "2024-07"},
    "openai:gpt-4o": {"ft_input_per_m": 3.75, "ft_output_per_m": 15.00, "training_per_m": 25.00, "as_of": "2024-08"},
    "openai:gpt-4.1-mini": {"ft_input_per_m": 0.80, "ft_output_per_m": 3.20, "training_per_m": 5.00,
                            "as_of": "2025-04"},
    "openai:gpt-4.1-nano": {"ft_input_per_m": 0.20, "ft_output_per_m": 0.80, "training_per_m": 1.50,
                            "as_of": "2025-04"},
    "openai:gpt-5-mini": {"ft_input_per_m": None, "ft_output_per_m": None, "training_per_m": None, "as_of": "-"},
    "openai:gpt-3.5-turbo": {"ft_input_per_m": 3.00, "ft_output_per_m": 6.00, "training_per_m": 8.00,
                             "as_of": "2024-01"},
}
#: The prices used when genai-prices is not installed (OpenAI's pricing page when each was published).
_API_FALLBACK = {"openai:gpt-4o-mini": (0.15, 0.60, "2024-07"), "openai:gpt-4o": (2.50, 10.00, "2024-08"),
                 "openai:gpt-4.1-mini": (0.40, 1.60, "2025-04"), "openai:gpt-4.1-nano": (0.10, 0.40, "2025-04"),
                 "openai:gpt-3.5-turbo": (0.50, 1.50, "2024-01")}


@functools.lru_cache(maxsize=1)
def price_source() -> dict[str, str] | None:
    """``{"name", "version", "date"}`` of the installed genai-prices data (``date``: its newest price
    change already in effect), or None when the package is missing."""
    try:
        import importlib.metadata
        import importlib.util

        version = importlib.metadata.version("genai-prices")
        spec = importlib.util.find_spec("genai_prices.data")
    except (ImportError, importlib.metadata.PackageNotFoundError):
        return None
    date = "-"
    if spec is not None and spec.origin:
        with open(spec.origin, encoding="utf-8") as f:
            dates = re.findall(r"datetime\.date\((\d{4}), (\d{1,2}), (\d{1,2})\)", f.read())
        today = time.localtime()[:3]
        past = [(int(y), int(m), int(d)) for y, m, d in dates if (int(y), int(m), int(d)) <= today]
        if past:  # the newest price change already in effect (the data also lists announced future ones)
            y, m, d = max(past)
            date = f"{y:04d}-{m:02d}-{d:02d}"
    return {"name": "genai-prices", "version": version, "date": date}


def _catalog_price(model: str) -> tuple[float, float] | None:
    """$ per 1M input and output tokens of an OpenAI model in genai-prices, today."""
    try:
        from genai_prices import Usage, calc_price
    except ImportError:
        return None
    try:
        per_in = calc_price(Usage(input_tokens=1_000_000), model, provider_id="openai").total_price
        per_out = calc_price(Usage(output_tokens=1_000_000), model, provider_id="openai").total_price
    except Exception:  # noqa: BLE001 - the catalogue does not know the model (its error types vary by version)
        log.warning("genai-prices has no price for %s", model, exc_info=True)
        return None
    return float(per_in), float(per_out)


def _api_rows() -> list[dict[str, Any]]:
    source = price_source()
    rows = []
    for model, extra in _API_MODELS.items():
        found = _catalog_price(model.split(":", 1)[1]) if source else None
        if found is not None:
            per_in, per_out, as_of = found[0], found[1], source["date"]
            where = f"genai-prices {source['version']} (prices up to {source['date']}); fine-tuning: {_OPENAI}"
        elif model in _API_FALLBACK:
            per_in, per_out, as_of = _API_FALLBACK[model]
            where = _OPENAI
        else:
            continue
        rows.append({"model": model, "input_per_m": per_in, "output_per_m": per_out,
                     **{k: v for k, v in extra.items() if k != "as_of"},
                     "as_of": as_of if found is None or extra["as_of"] == "-" else f"{as_of}; ft {extra['as_of']}",
                     "source": where})
    return rows


#: The measuring machine's class; the default hardware, so that a local answer has a cost from the start.
DEFAULT_HARDWARE = "CPU server (2 vCPU)"

_DEFAULT_OTHER: dict[str, list[dict[str, Any]]] = {
    "embedding": [
        {"model": "local:all-minilm-l6-v2", "per_m": 0.0, "as_of": "-",
         "source": "runs on the serving machine; its time is part of the measured seconds"},
        {"model": "openai:text-embedding-3-small", "per_m": 0.02, "as_of": "2024-01", "source": _OPENAI},
        {"model": "openai:text-embedding-3-large", "per_m": 0.13, "as_of": "2024-01", "source": _OPENAI},
    ],
    "hardware": [
        {"name": DEFAULT_HARDWARE, "per_hour": 0.085, "speedup": 1.0, "as_of": "2024-01",
         "source": "AWS c6i.large (2 vCPU, 4 GiB) on-demand, us-east-1",
         "speedup_source": "the same class as a 2-core measuring machine; edit it if yours differs"},
        {"name": "laptop", "per_hour": 0.0, "speedup": 1.0, "as_of": "-",
         "source": "a machine you already own: no extra cost",
         "speedup_source": "the machine that measured the answers"},
        {"name": "small GPU", "per_hour": 0.526, "speedup": None, "as_of": "2024-01",
         "source": "AWS g4dn.xlarge (1x NVIDIA T4) on-demand, us-east-1",
         "speedup_source": "not measured: run bench/gpu_check.sh on this GPU and enter its speed-up"},
        {"name": "large GPU", "per_hour": 4.10, "speedup": None, "as_of": "2024-01",
         "source": "one NVIDIA A100: AWS p4d.24xlarge on-demand $32.77/h for 8 GPUs, us-east-1",
         "speedup_source": "not measured: run bench/gpu_check.sh on this GPU and enter its speed-up"},
    ],
    "hosting": [
        {"name": "vector database", "per_month": 30.37, "as_of": "2024-01",
         "source": "a Chroma server on AWS t3.medium on-demand ($0.0416/h x 730 h), us-east-1"},
        {"name": "reranker", "per_month": 60.74, "as_of": "2024-01",
         "source": "a cross-encoder on AWS t3.large on-demand ($0.0832/h x 730 h), us-east-1"},
    ],
}


@functools.lru_cache(maxsize=1)
def _defaults() -> dict[str, list[dict[str, Any]]]:
    return {"api": _api_rows(), **_DEFAULT_OTHER}


PRICES_FILE = "prices.json"


def _number(value: Any) -> float | None:
    """A cell as a float; None for an empty cell (unknown)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError
    number = float(value)
    if number != number:  # NaN from an emptied data-editor cell
        return None
    return number


def validate_prices(table: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """A clean copy of ``table``; a DataError naming every bad cell (category, row number, column)."""
    if not isinstance(table, dict):
        raise DataError(f"Expected a price table (an object with {', '.join(PRICE_COLUMNS)}), "
                        f"got {type(table).__name__}.")
    problems, clean = [], {}
    for category, (title, key, columns) in PRICE_COLUMNS.items():
        rows = table.get(category) or []
        if not isinstance(rows, list):
            problems.append(f"{title}: expected a list of rows, got {type(rows).__name__}")
            continue
        seen: set[str] = set()
        clean[category] = []
        for n, row in enumerate(rows, start=1):
            if not isinstance(row, dict):
                problems.append(f"{title} row {n}: expected a row, got {row!r}")
                continue
            name = str(row.get(key) or "").strip()
            if not name:
                if all(_is_empty(row.get(c)) for c in columns):
                    continue  # a blank row the editor added: ignore it
                problems.append(f"{title} row {n}: expected a {key}, got an empty cell")
                continue
            if name in seen:
                problems.append(f"{title} row {n}: {name!r} appears twice")
            seen.add(name)
            out = {key: name, "as_of": str(row.get("as_of") or "").strip() or "-",
                   "source": str(row.get("source") or "").strip() or "your edit"}
            for text in TEXT_COLUMNS.get(category, ()):
                out[text] = str(row.get(text) or "").strip() or "your edit"
            for column, (header, _, upper) in columns.items():
                try:
                    value = _number(row.get(column))
                except (TypeError, ValueError):
                    problems.append(f"{title} row {n} ({name}), {header}: expected a number, got {row.get(column)!r}")
                    continue
                if value is not None and not 0 <= value <= upper:
                    problems.append(f"{title} row {n} ({name}), {header}: expected 0 to {_plain(upper)}, "
                                    f"got {_plain(value)}")
                    continue
                out[column] = value
            clean[category].append(out)
    if problems:
        raise DataError("The price table has problems; nothing was saved:\n- " + "\n- ".join(problems))
    return clean


def _plain(x: float) -> str:
    """1000000.0 -> '1,000,000'; 0.526 -> '0.526' (never scientific notation in a message)."""
    return f"{x:,.0f}" if float(x).is_integer() and abs(x) < 1e15 else f"{x:,.6g}"


def _is_empty(value: Any) -> bool:
    try:
        return _number(value) is None
    except (TypeError, ValueError):
        return False


def default_prices() -> dict[str, list[dict[str, Any]]]:
    return copy.deepcopy(_defaults())


def load_prices(workspace: str) -> dict[str, list[dict[str, Any]]]:
    """The workspace's price table (the defaults until the user saves one). A damaged file falls back
    to the defaults and is logged; it is never silently overwritten."""
    path = workspace_dir(workspace) / PRICES_FILE
    data = read_json(path, None)
    if data is None:
        return default_prices()
    try:
        return _with_speedups(validate_prices(data.get("prices", data)))
    except (DataError, AttributeError) as exc:
        log.warning("Ignoring the damaged price table %s: %s", path, exc)
        return default_prices()


def _with_speedups(table: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """A table saved before hardware rows stated their speed-up: each default row gets its stated one,
    and the default hardware row is added, so its local costs stay known."""
    rows = table.get("hardware", [])
    if any("speedup_source" in r and r["speedup_source"] != "your edit" for r in rows):
        return table
    defaults = {r["name"]: r for r in _defaults()["hardware"]}
    for row in rows:
        if row.get("speedup") is None and row["name"] in defaults:
            row["speedup"] = defaults[row["name"]]["speedup"]
            row["speedup_source"] = defaults[row["name"]]["speedup_source"]
    if DEFAULT_HARDWARE not in {r["name"] for r in rows}:
        rows.insert(0, copy.deepcopy(defaults[DEFAULT_HARDWARE]))
    table["hardware"] = rows
    return table


def save_prices(workspace: str, table: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Validate and save (atomically); the old table stays when validation fails."""
    clean = validate_prices(table)
    atomic_write_json(workspace_dir(workspace) / PRICES_FILE, {"saved_at": time.time(), "prices": clean})
    return clean


def reset_prices(workspace: str) -> None:
    (workspace_dir(workspace) / PRICES_FILE).unlink(missing_ok=True)


def row_status(category: str, row: dict[str, Any]) -> str:
    """'default', 'edited' (a default row with changed numbers) or 'added'."""
    _, key, columns = PRICE_COLUMNS[category]
    default = next((r for r in _defaults()[category] if r[key] == row.get(key)), None)
    if default is None:
        return "added"
    same = all(_close(default.get(c), row.get(c)) for c in columns)
    return "default" if same and default["as_of"] == row.get("as_of") else "edited"


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) < 1e-12


def find_price(table: dict[str, list[dict[str, Any]]], category: str, name: str) -> dict[str, Any] | None:
    key = PRICE_COLUMNS[category][1]
    return next((r for r in table.get(category, []) if r.get(key) == name), None)


# == The hardware rate ================================================================================
@dataclass(frozen=True)
class Rate:
    """What a second of the machine that answered costs, on the hardware chosen on the Costs page."""

    hardware: str
    per_hour: float | None
    """$ per hour; None when the table has no price for it."""
    speedup: float | None
    """How many times faster it runs the model than the machine that measured; None: not stated."""
    speedup_source: str = ""

    def label(self) -> str:
        """'CPU server (2 vCPU) at $0.085/h' (with the speed-up when it is not 1)."""
        if self.per_hour is None:
            return f"{self.hardware} (no $/hour known)"
        faster = "" if self.speedup in (None, 1.0) else f", {self.speedup:g}x faster than the measuring machine"
        unstated = ", speed-up not stated" if self.speedup is None else ""
        return f"{self.hardware} at ${self.per_hour:g}/h{faster}{unstated}"

    def seconds_cost(self, seconds: float) -> Cost:
        """The cost of ``seconds`` of the measuring machine on this hardware."""
        if self.per_hour is None:
            return Cost(None, f"no $/hour known for {self.hardware}")
        if self.speedup is None:
            return Cost(None, f"no speed-up stated for {self.hardware} over the measuring machine (set it in "
                              "the price table)")
        hours = seconds / self.speedup / 3600
        faster = "" if self.speedup == 1 else f" / {self.speedup:g}"
        return Cost(hours * self.per_hour, f"{seconds:.2f} s{faster} of {self.hardware} at ${self.per_hour:g}/h")


def hardware_rate(table: dict[str, list[dict[str, Any]]], hardware: str) -> Rate:
    """The rate of the table's ``hardware`` row (unknown figures when the row is missing)."""
    row = find_price(table, "hardware", hardware) or {}
    return Rate(hardware, row.get("per_hour"), row.get("speedup"), str(row.get("speedup_source") or ""))


#: The projection inputs (Costs page), which hold the chosen hardware; ``costs`` reads the rest.
PROJECTION_FILE = "projection.json"


def chosen_hardware(workspace: str) -> str:
    """The hardware chosen on the Costs page for local models (the default until one is saved)."""
    data = read_json(workspace_dir(workspace) / PROJECTION_FILE, None) or {}
    name = (data.get("projection") or {}).get("hardware") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else DEFAULT_HARDWARE


@dataclass(frozen=True)
class Pricing:
    """A price table and the hardware rate taken from it: everything needed to price an answer."""

    table: dict[str, list[dict[str, Any]]]
    rate: Rate

    def cost(self, answer: Answer) -> Cost:
        return answer_cost(answer, self.table, self.rate)


def pricing_for(workspace: str | None) -> Pricing:
    """The workspace's price table and chosen hardware (the defaults without a workspace)."""
    if workspace is None:
        table = default_prices()
        return Pricing(table, hardware_rate(table, DEFAULT_HARDWARE))
    table = load_prices(workspace)
    return Pricing(table, hardware_rate(table, chosen_hardware(workspace)))


def default_pricing() -> Pricing:
    return pricing_for(None)


# == One answer's cost ================================================================================
def _remote(model_id: str, kind: str = "generator") -> bool:
    from .models import is_remote  # the registry knows which models are served elsewhere

    return is_remote(model_id, kind)


def answer_cost(answer: Answer, table: dict[str, list[dict[str, Any]]], rate: Rate) -> Cost:
    """The cost of one answer: machine time (``Answer.machine_s``) at ``rate`` for a local model or a
    cache hit, else its tokens at the table's price for its API model."""
    model_id = answer.model_id
    if answer.cache_hit:
        cost = rate.seconds_cost(answer.machine_s)
        return Cost(cost.usd, f"cache hit: {cost.basis}")
    if not _remote(model_id):
        return rate.seconds_cost(answer.machine_s)
    row = find_price(table, "api", model_id)
    if row is None or row.get("input_per_m") is None or row.get("output_per_m") is None:
        return Cost(None, f"no price known for {model_id}")
    usd = (answer.usage.tokens_in * row["input_per_m"] + answer.usage.tokens_out * row["output_per_m"]) / 1e6
    return Cost(usd, f"tokens at ${row['input_per_m']:g}/${row['output_per_m']:g} per 1M in/out ({row['as_of']})")


def embedding_cost(table: dict[str, list[dict[str, Any]]], model_id: str, tokens: int) -> Cost:
    """The cost of embedding ``tokens`` with ``model_id`` (a local embedder's time is in the measured
    seconds, so it is $0 here)."""
    if not _remote(model_id, "embedder"):
        return Cost(0.0, "runs on this machine")
    row = find_price(table, "embedding", model_id)
    if row is None or row.get("per_m") is None:
        return Cost(None, f"no price known for {model_id}")
    return Cost(tokens * row["per_m"] / 1e6, f"{tokens:,} tokens at ${row['per_m']:g} per 1M ({row['as_of']})")


def whatif_cost(answer: Answer, model_id: str, table: dict[str, list[dict[str, Any]]],
                fine_tuned: bool = False) -> Cost:
    """What ``answer`` would have cost on the API model ``model_id`` (fine-tuned prices if asked)."""
    row = find_price(table, "api", model_id)
    cols = ("ft_input_per_m", "ft_output_per_m") if fine_tuned else ("input_per_m", "output_per_m")
    if row is None or row.get(cols[0]) is None or row.get(cols[1]) is None:
        return Cost(None, f"no {'fine-tuned ' if fine_tuned else ''}price known for {model_id}")
    tokens = api_tokens(answer, model_id)
    usd = (tokens.tokens_in * row[cols[0]] + tokens.tokens_out * row[cols[1]]) / 1e6
    how = "counted with the model's tokenizer" if tokens.exact else "estimate from the local model's tokenizer"
    return Cost(usd, f"{tokens.tokens_in} in + {tokens.tokens_out} out tokens ({how})")


