"""Command line: ``python -m workbench doctor|ask ...``; drives the same core functions as the app.

A ``WorkbenchError`` is printed as a message and exits with code 2; anything else is a bug and
shows its traceback.

Longer than 450 lines because it holds one short function per command and the argument parser for
all of them; each command only parses, calls the core and prints.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from . import paths
from .config import DEFAULT_EMBEDDER, DEFAULT_GENERATOR, GenerationConfig
from .config import help_for as _field_help
from .errors import WorkbenchError

if TYPE_CHECKING:
    from .config import RetrievalConfig
    from .records import EvalRun


def _cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import run_doctor

    report = run_doctor(args.generator, args.embedder, deep=args.deep)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 0 if report.ok else 1


def _prompt_settings(args: argparse.Namespace, adapter: str | None, embedder_id: str):
    """The workspace's prompts (or those of --prompts FILE, in the workspace's prompts.json shape), with
    --examples K for the Prompted approach, and its example pool."""
    from . import models
    from .prompts import PromptSet, example_pool, load_prompts

    if args.prompts:
        from pathlib import Path

        prompts = PromptSet.from_dict(json.loads(Path(args.prompts).read_text(encoding="utf-8")))
    else:
        prompts = load_prompts(args.workspace)
    if args.examples is not None:
        prompts = PromptSet(prompts.templates, args.examples)
    pool = example_pool(args.workspace, adapter, models.get_embedder(embedder_id).embed) \
        if "prompted" in args.modes else None
    return prompts, pool


def _cmd_ask(args: argparse.Namespace) -> int:
    from . import models
    from .index import open_index
    from .progress import TqdmSink
    from .config import DEFAULT_EMBEDDER
    from .history import answer_rows, export_json, run_and_record
    from .strategies import LABELS, ComparisonSpec, uses_passages
    from .training import get_adapter

    config = GenerationConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed,
                              repetition_penalty=args.repetition_penalty, penalize_prompt=args.penalize_prompt,
                              adapter_repetition_penalty=args.adapter_repetition_penalty)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    sink = TqdmSink()
    generator = models.get_generator(args.model, progress=sink)
    sink.close()
    index = open_index(args.workspace) if any(uses_passages(m) for m in modes) else None
    chosen = get_adapter(args.workspace, args.adapter) if args.adapter else None
    adapter = chosen.path if chosen else None
    current = {"mode": None}

    def on_text(mode: str, piece: str) -> None:
        if current["mode"] != mode:
            current["mode"] = mode
            print(f"\n== {LABELS[mode]} ({mode})")
        print(piece, end="", flush=True)

    def on_cached(mode: str, answer) -> None:
        hit = answer.cache_hit
        print(f"\n== {LABELS[mode]} ({mode}) [cache hit: {hit['question']!r}, similarity {hit['similarity']:.3f}]")
        print(answer.text, end="", flush=True)

    # One mode streams; several modes decode together, so their answers are printed when complete.
    stream = not args.json and len(modes) == 1
    if not args.json and not stream:
        print(f"answering with {', '.join(modes)} (decoded together) ...", flush=True)
    embedder_id = index.config.embedder_id if index else DEFAULT_EMBEDDER
    prompts, examples = _prompt_settings(args, adapter, embedder_id)
    retrieval = _passages_for(args, generator.model_id, index, modes) if index is not None else None
    spec = ComparisonSpec(tuple(modes), generator, adapter=chosen, generation=config, prompts=prompts,
                          examples=examples, cache_threshold=args.cache, embedder_id=embedder_id,
                          **({"retrieval": retrieval} if retrieval else {}))
    run = run_and_record(args.question, spec, workspace=args.workspace, index=index,
                         on_text=on_text if stream else None, on_cached=on_cached if stream else None)
    if not args.json and not stream:
        for answer in run.answers:
            hit = answer.cache_hit
            note = f" [cache hit: {hit['question']!r}, similarity {hit['similarity']:.3f}]" if hit else ""
            print(f"\n== {LABELS[answer.mode]} ({answer.mode}){note}\n{answer.text}")
    print()
    for mode, reason in run.unavailable.items():
        print(f"== {LABELS[mode]} ({mode}): not available: {reason}")
    for mode, reason in run.errors.items():
        print(f"== {LABELS[mode]} ({mode}): failed: {reason}", file=sys.stderr)
    failed = 1 if run.errors and not run.answers else 0  # nothing answered: a script must see it
    if args.json:
        print(export_json([run]).decode())
        return failed
    from .records import STAGES as stages
    print("\n" + "mode".ljust(10) + "".join(s[:12].rjust(13) for s in stages) + "   tok in/out   tok/s   total s")
    for row, answer in zip(answer_rows([run]), run.answers):
        seconds = answer.stages
        cells = "".join((f"{seconds[s] * 1000:.0f} ms" if s in seconds else "-").rjust(13) for s in stages)
        print(row["mode"].ljust(10) + cells + f"   {row['tokens_in']:>5}/{row['tokens_out']:<5} "
              f"{row['tokens_per_s'] or 0:6.1f}   {row['total_s']:6.2f}" + ("   (cache hit)" if row["cache_hit"] else ""))
        for c in answer.citations[:5]:
            print(f"    [{c['rank']}] {c['doc_name']}" + (f" > {c['heading']}" if c.get("heading") else ""))
    if run.answers:
        print(f"\nstored as run {run.id} in workspace {args.workspace!r} (Compare page history)")
    return failed


def _cmd_index(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .config import IndexConfig
    from .documents import SUPPORTED, parse_uploads
    from .index import open_index, rebuild_index
    from .progress import TqdmSink

    files: list[Path] = []
    for raw in args.paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED)
        elif path.is_file():
            files.append(path)
        else:
            print(f"error: {raw}: no such file or folder", file=sys.stderr)
            return 2
    base = IndexConfig()
    config = IndexConfig(embedder_id=args.embedder or base.embedder_id,
                         chunk_tokens=args.chunk_tokens or base.chunk_tokens,
                         overlap_tokens=base.overlap_tokens if args.overlap_tokens is None else args.overlap_tokens,
                         precision=args.precision or base.precision, chroma_url=args.chroma_url or "")
    explicit = any(v is not None for v in (args.embedder, args.chunk_tokens, args.overlap_tokens, args.precision,
                                           args.chroma_url))
    sink = TqdmSink()
    if args.rebuild:
        report = rebuild_index(args.workspace, config, progress=sink)
        sink.close()
        print(f"rebuilt: {report.chunks_added} chunks in {report.seconds:.1f} s")
        return 0
    index = open_index(args.workspace, config if explicit else None)
    docs, problems = parse_uploads((p.name, p.read_bytes()) for p in files)
    report = index.add_documents(docs, progress=sink)
    sink.close()
    for name, message in [(p.name, p.message) for p in problems] + report.problems:
        print(f"skipped {message}", file=sys.stderr)
    print(f"added {len(report.added)}, replaced {len(report.replaced)}, unchanged {len(report.unchanged)}, "
          f"problems {len(problems) + len(report.problems)}; {report.chunks_added} chunks in {report.seconds:.1f} s "
          f"({report.chunks_per_s:.1f} chunks/s); index now {len(index.documents())} documents, {index.count()} chunks")
    return 0 if not (problems or report.problems) else 1


def _cmd_search(args: argparse.Namespace) -> int:
    from .config import RetrievalConfig
    from .index import open_index
    from .retrieval import retrieve

    config = RetrievalConfig(top_k=args.k, candidates=max(args.k, args.candidates), keyword=not args.no_keyword,
                             rerank=not args.no_rerank)
    result = retrieve(open_index(args.workspace), args.question, config)
    if args.json:
        print(json.dumps({"hits": [h.to_dict() for h in result.hits],
                          "timings_ms": {t.stage: t.seconds * 1000 for t in result.timings}}, indent=2))
        return 0
    for hit in result.hits:
        where = f"{hit.chunk.doc_name}" + (f" p.{hit.chunk.page}" if hit.chunk.page else "")
        moved = f" (was #{hit.rank_before_rerank})" if hit.rank_before_rerank and hit.rerank_score is not None else ""
        print(f"#{hit.rank}{moved} score {hit.score:.3f} | {where} | {hit.chunk.heading}")
        print("    " + hit.chunk.text[:300].replace("\n", " ") + ("..." if len(hit.chunk.text) > 300 else ""))
    print("-- " + " | ".join(f"{t.stage} {t.seconds * 1000:.1f} ms" for t in result.timings)
          + f" | total {result.total_s * 1000:.1f} ms")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .config import TrainConfig
    from .pairs import read_pairs
    from .progress import TqdmSink
    from .training import train_adapter

    path = Path(args.pairs)
    if not path.is_file():
        print(f"error: {path}: no such file", file=sys.stderr)
        return 2
    pairs, report = read_pairs(path.name, path.read_bytes(), strict=not args.keep_good_rows)
    for line, reason in report.rejected:
        print(f"skipped {path.name}, line {line}: {reason}", file=sys.stderr)
    from .raft import RAFT_PRESETS

    # Unset options take the plain defaults, or the retrieval-aware preset's with --with-context.
    if args.preset and not args.with_context:
        print("error: --preset sets up retrieval-aware training: add --with-context", file=sys.stderr)
        return 2
    base = RAFT_PRESETS[args.preset or "quick"].config if args.with_context else TrainConfig()
    pick = lambda value, name: getattr(base, name) if value is None else value  # noqa: E731
    config = TrainConfig(method=args.method, rank=args.rank, alpha=args.alpha or 2 * args.rank,
                         epochs=pick(args.epochs, "epochs"), learning_rate=args.lr,
                         max_length=pick(args.max_length, "max_length"), batch_size=pick(args.batch_size, "batch_size"),
                         seed=args.seed,
                         target_modules=args.target_modules, val_fraction=args.val_fraction, overflow=base.overflow,
                         context_passages=pick(args.context_passages, "context_passages") if args.with_context else 0,
                         context_sentences=pick(args.context_sentences, "context_sentences"),
                         distractor_share=pick(args.distractor_share, "distractor_share"),
                         top_layers=pick(args.top_layers, "top_layers"), dropout=pick(args.dropout, "dropout"),
                         precision=args.precision)
    index = prompts = None
    if args.with_context:
        from .index import open_index
        from .prompts import load_prompts

        index, prompts = open_index(args.workspace), load_prompts(args.workspace)
    sink = TqdmSink()
    saved = train_adapter(pairs, config, workspace=args.workspace, name=args.name, base_model=args.model,
                          progress=sink, max_steps=args.max_steps, index=index, prompts=prompts)
    sink.close()
    print(f"saved adapter {saved.name} ({saved.method}, {saved.train_pairs} pairs, {saved.steps} steps) "
          f"in {saved.wall_s or 0:.1f} s; final training loss {saved.final_train_loss or 0:.3f}"
          + (f", validation loss {saved.final_val_loss:.3f}" if saved.final_val_loss is not None else ""))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import models
    from .eval_runs import evaluate
    from .evaluation import read_testset
    from .index import open_index
    from .progress import TqdmSink
    from .samples import sample_dir
    from .strategies import ComparisonSpec, availability
    from .training import get_adapter

    path = Path(args.testset) if args.testset else sample_dir() / "eval_set.jsonl"
    items, report = read_testset(path.name, path.read_bytes())
    for problem in report.problems:
        print(f"skipped: {problem}", file=sys.stderr)
    items = items[: args.limit] if args.limit else items
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    index = open_index(args.workspace)
    chosen = get_adapter(args.workspace, args.adapter) if args.adapter else None
    adapter = chosen.path if chosen else None
    prompts, examples = _prompt_settings(args, adapter, index.config.embedder_id)
    plan = availability(modes, index=index, adapter=adapter, examples=examples, model_id=args.model)
    runnable = [m for m, reason in plan.items() if not reason]
    for mode in set(modes) - set(runnable):
        print(f"skipped {mode}: {plan[mode]}", file=sys.stderr)
    sink = TqdmSink()
    generator = models.get_generator(args.model, progress=sink)
    retrieval = _passages_for(args, generator.model_id, index, runnable)
    generation = GenerationConfig(max_new_tokens=args.max_new_tokens, repetition_penalty=args.repetition_penalty,
                                  penalize_prompt=args.penalize_prompt,
                                  adapter_repetition_penalty=args.adapter_repetition_penalty)
    spec = ComparisonSpec(tuple(runnable), generator, adapter=chosen, retrieval=retrieval, generation=generation,
                          prompts=prompts,
                          examples=examples, embedder_id=index.config.embedder_id)
    run = evaluate(items, spec, workspace=args.workspace, index=index, testset_name=path.name,
                   label=args.label or "", progress=sink)
    sink.close()
    return _print_run(run, args.workspace, args.json)


def _passages_for(args: argparse.Namespace, model_id: str, index: Any, modes: list[str]) -> "RetrievalConfig":
    """``--top-k``, else the workspace's tuned count for this model and index, else the default; says which."""
    from .config import RetrievalConfig
    from .strategies import uses_passages
    from .tuning import tuned_top_k

    tuning = tuned_top_k(args.workspace, model_id, index) if args.top_k is None else None
    if args.top_k is not None:
        top_k, said = args.top_k, f"{args.top_k} (--top-k)"
    elif tuning is not None:
        top_k, said = tuning.top_k, tuning.note()
    else:
        top_k = RetrievalConfig().top_k
        said = (f"{top_k}, the default (`python -m workbench tune-passages` chooses RAG's best count on the "
                "workspace's training pairs)")
    if any(uses_passages(m) for m in modes):
        print(f"passages for RAG and hybrid: {said}", file=sys.stderr)
    return RetrievalConfig(top_k=top_k, candidates=max(top_k, RetrievalConfig().candidates))


def _cmd_tune_passages(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import models
    from .index import open_index
    from .pairs import read_pairs
    from .progress import TqdmSink
    from .prompts import load_prompts
    from .training import TRAINING_PAIRS
    from .tuning import save_tuning, tune_passages

    path = Path(args.pairs) if args.pairs else paths.workspace_dir(args.workspace, create=False) / TRAINING_PAIRS
    if not path.is_file():
        print(f"error: {path}: no such file" + ("" if args.pairs else " (the workspace has no training pairs yet: "
                                                 "pass a pairs file)"), file=sys.stderr)
        return 2
    pairs, report = read_pairs(path.name, path.read_bytes(), strict=False)
    for line, reason in report.rejected:
        print(f"skipped {path.name}, line {line}: {reason}", file=sys.stderr)
    try:
        candidates = tuple(int(k) for k in args.candidates.split(",") if k.strip())
    except ValueError:
        print(f"error: expected --candidates as whole numbers separated by commas, e.g. 1,2,3,5; got "
              f"{args.candidates!r}", file=sys.stderr)
        return 2
    sink = TqdmSink()
    generator = models.get_generator(args.model, progress=sink)
    tuning = tune_passages(pairs, open_index(args.workspace), generator, prompts=load_prompts(args.workspace),
                           candidates=candidates, limit=args.limit, progress=sink,
                           generation=GenerationConfig(max_new_tokens=args.max_new_tokens))
    sink.close()
    save_tuning(args.workspace, tuning)
    print(f"{tuning.note()}; {tuning.wall_s:.0f} s. Evaluate and Compare now start from {tuning.top_k} for this "
          "model and index.")
    return 0


def _print_run(run: "EvalRun", workspace: str, as_json: bool) -> int:
    """An evaluation run's summary per approach, as a table or as JSON."""
    from .eval_summary import accuracy, summarize
    from .pricing import pricing_for
    from .strategies import LABELS

    summary, acc = summarize(run, pricing_for(workspace)), accuracy(run)
    failures: dict[str, list[str]] = {}
    for entry in run.errors:
        for mode, reason in entry.items():
            if mode != "item_id":
                failures.setdefault(mode, []).append(reason)
    for mode, reasons in failures.items():
        print(f"{LABELS.get(mode, mode)} ({mode}) failed on {len(reasons)} question(s); the first: {reasons[0]}",
              file=sys.stderr)
    failed = 1 if failures and not run.results else 0  # nothing answered: a script must see it
    if as_json:
        print(json.dumps({"run_id": run.id, "status": run.status, "accuracy": acc, "summary": summary,
                          "errors": run.errors}, indent=2, default=str))
        return failed
    cols = [("correct_answerable", "correct"), ("verdict_partial", "partial"), ("verdict_wrong", "wrong"),
            ("verdict_stale", "stale"), ("verdict_refused", "refused"), ("declined_unanswerable", "declined"),
            ("grounded", "grounded"), ("cited", "cited"), ("format_ok", "format"), ("f1", "F1"),
            ("latency_p50_s", "p50 s")]
    print("\n" + "approach".ljust(12) + "".join(h.rjust(10) for _, h in cols))
    for mode, s in summary.items():
        values = [s.get(k) for k, _ in cols]
        print(LABELS.get(mode, mode).ljust(12) + "".join(("-" if v is None else f"{v:.2f}").rjust(10) for v in values))
    n = next(iter(summary.values()), {}).get("n_answerable", 0)
    print(f"\ncorrect, partial, wrong, stale, refused: verdicts on the {n} answerable questions (facts found, missing "
          "or contradicted);\ndeclined: share of unanswerable questions the approach declined.")
    print(f"\nrun {run.id} ({run.status}, {run.done} questions) stored in workspace {workspace!r}")
    return failed


def _cmd_rejudge(args: argparse.Namespace) -> int:
    from .eval_runs import judge_version, list_eval_runs, rejudge
    from .verdicts import JUDGE_VERSION

    ids = args.run_ids or [r.id for r in list_eval_runs(args.workspace) if judge_version(r) < JUDGE_VERSION]
    if not ids:
        print(f"every run in workspace {args.workspace!r} already has judge version {JUDGE_VERSION}'s verdicts")
        return 0
    for run_id in ids:
        run = rejudge(args.workspace, run_id)
        print(f"run {run_id}: re-judged with judge version {JUDGE_VERSION}")
        if args.run_ids:
            _print_run(run, args.workspace, args.json)
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import os

    from .errors import ConfigError

    key = os.environ.get("WORKBENCH_SERVE_API_KEY") if args.api_key_env else None
    if args.api_key_env and not (key or "").strip():
        # Asked for authentication: never fall back to serving without it.
        raise ConfigError("Expected an API key in WORKBENCH_SERVE_API_KEY (--api-key-env), found none: refusing to "
                          "serve without authentication.",
                          fix="export WORKBENCH_SERVE_API_KEY=some-long-secret, or drop --api-key-env on a machine "
                              "only you can reach.")
    import uvicorn

    from . import models
    from .progress import TqdmSink
    from .serve import create_app, workspace_adapters

    sink = TqdmSink()
    generator = models.get_generator(args.model, progress=sink)
    sink.close()
    name = args.model_name or args.model
    embedder = models.get_embedder(args.embedder) if args.embedder else None
    app = create_app(generator, model_name=name, api_key=key,
                     adapter_lister=lambda: workspace_adapters(args.workspace, args.model), embedder=embedder,
                     embedder_name=args.embedder)
    print(f"serving {name} and the adapters of workspace {args.workspace!r} at http://{args.host}:{args.port}/v1"
          + (" (API key required)" if key else ""))
    print(f"use it here as: compat:http://{args.host}:{args.port}/v1#{name}")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _cmd_facilitator(args: argparse.Namespace) -> int:
    import getpass

    from . import workshop

    if args.set_passphrase:
        phrase = sys.stdin.readline().rstrip("\n") if args.stdin else getpass.getpass("Facilitator passphrase: ")
        if not args.stdin and getpass.getpass("Again: ") != phrase:
            print("error: the two passphrases differ; nothing was saved", file=sys.stderr)
            return 2
        workshop.set_passphrase(phrase)
        print("passphrase hash saved; the Facilitator page is now enabled (start with WORKBENCH_WORKSHOP=1 to "
              "give each visitor a fresh workspace)")
        return 0
    if args.print_hash:
        phrase = sys.stdin.readline().rstrip("\n") if args.stdin else getpass.getpass("Facilitator passphrase: ")
        print(workshop.hash_passphrase(phrase))
        return 0
    print("enabled" if workshop.facilitator_enabled() else "no passphrase set")
    return 0


MODEL_HELP = "generator id (default: the workspace's model, see `model`)"


def _cmd_model(args: argparse.Namespace) -> int:
    from . import model_choice

    if args.list:
        for row in model_choice.recommended_status():
            mark = "present" if row["present"] else "not here"
            print(f"{row['model_id']:<42} {row['hardware']:<11} {mark:<9} {row['size']}; {row['note']}")
        return 0
    if args.model_id and args.download:
        from .progress import TqdmSink

        sink = TqdmSink()
        try:
            model_choice.download(args.model_id, progress=sink)
        finally:
            sink.close()
    if args.model_id:
        print(f"{args.workspace}: now answers and trains with {model_choice.choose(args.workspace, args.model_id)}")
        return 0
    info = model_choice.describe(args.workspace)
    print(f"{args.workspace}: {info['model_id']}" + (f" (chosen {info['chosen_at']})" if info["chosen_at"] else
                                                      " (the default)"))
    print(info["note"])
    if info["decode"]:
        print(info["decode"])
    return 0


def help_for(config_cls: type, name: str) -> str:
    """A config field's help for argparse, which reads ``%`` as a format sign ("10%" broke ``--help``)."""
    return _field_help(config_cls, name).replace("%", "%%")


def _batch_answer_args(parser: argparse.ArgumentParser, limit_help: str) -> None:
    """The options of every command that answers a batch of questions (evaluate, tune-passages)."""
    parser.add_argument("--workspace", default="default")
    parser.add_argument("--limit", type=int, help=limit_help)
    parser.add_argument("--model", help=MODEL_HELP)
    parser.add_argument("--max-new-tokens", type=int, default=96, help=help_for(GenerationConfig, "max_new_tokens"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m workbench", description="RAG-vs-Fine-tune Workbench")
    sub = parser.add_subparsers(dest="command", required=True)

    doctor = sub.add_parser("doctor", help="check models, device, versions and disk (offline)")
    doctor.add_argument("--deep", action="store_true", help="also load each model and run it once")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.add_argument("--generator", default=DEFAULT_GENERATOR, help="generator id to check")
    doctor.add_argument("--embedder", default=DEFAULT_EMBEDDER, help="embedder id to check")
    doctor.set_defaults(func=_cmd_doctor)

    ask = sub.add_parser("ask", help="answer a question and print the timings")
    ask.add_argument("question")
    ask.add_argument("--modes", default="base", help="comma-separated: base, prompted, rag, finetuned, hybrid, stuffed")
    ask.add_argument("--adapter", help="adapter name (for finetuned and hybrid)")
    ask.add_argument("--workspace", default="default")
    ask.add_argument("--cache", type=float, metavar="THRESHOLD",
                     help="reuse an earlier answer to a question at least this similar (cosine, e.g. 0.95)")
    ask.add_argument("--model", help=MODEL_HELP)
    ask.add_argument("--max-new-tokens", type=int, default=GenerationConfig.max_new_tokens,
                     help=help_for(GenerationConfig, "max_new_tokens"))
    ask.add_argument("--temperature", type=float, default=0.0, help=help_for(GenerationConfig, "temperature"))
    ask.add_argument("--seed", type=int, default=0, help=help_for(GenerationConfig, "seed"))
    ask.add_argument("--repetition-penalty", type=float, default=GenerationConfig.repetition_penalty,
                    help=help_for(GenerationConfig, "repetition_penalty"))
    ask.add_argument("--penalize-prompt", action="store_true", help=help_for(GenerationConfig, "penalize_prompt"))
    ask.add_argument("--adapter-repetition-penalty", type=float,
                    default=GenerationConfig.adapter_repetition_penalty,
                    help=help_for(GenerationConfig, "adapter_repetition_penalty"))
    ask.add_argument("--top-k", type=int, help="passages for RAG and hybrid (default: the workspace's tuned count "
                     "for this model, see tune-passages, else 5)")
    ask.add_argument("--json", action="store_true", help="print each answer as JSON")
    ask.add_argument("--prompts", metavar="FILE", help="prompt templates as JSON (default: the workspace's)")
    ask.add_argument("--examples", type=int, help="few-shot examples for the prompted approach (default: the "
                                                   "workspace's, 3)")
    ask.set_defaults(func=_cmd_ask)

    from .config import IndexConfig

    index = sub.add_parser("index", help="add documents (files or folders) to a workspace's index")
    index.add_argument("paths", nargs="*", help="files or folders (.txt .md .pdf .docx .html)")
    index.add_argument("--workspace", default="default")
    index.add_argument("--chunk-tokens", type=int, help=help_for(IndexConfig, "chunk_tokens"))
    index.add_argument("--overlap-tokens", type=int, help=help_for(IndexConfig, "overlap_tokens"))
    index.add_argument("--embedder", help=help_for(IndexConfig, "embedder_id"))
    index.add_argument("--precision", choices=["int8", "fp32"], help=help_for(IndexConfig, "precision"))
    index.add_argument("--chroma-url", help=help_for(IndexConfig, "chroma_url"))
    index.add_argument("--rebuild", action="store_true", help="re-chunk and re-embed every document with these settings")
    index.set_defaults(func=_cmd_index)

    search = sub.add_parser("search", help="retrieve chunks for a question, with per-stage timings")
    search.add_argument("question")
    search.add_argument("--workspace", default="default")
    search.add_argument("-k", type=int, default=5, help="chunks to return")
    search.add_argument("--candidates", type=int, default=20, help="candidates before reranking")
    search.add_argument("--no-keyword", action="store_true", help="dense search only, no BM25 fusion")
    search.add_argument("--no-rerank", action="store_true", help="skip the rerank stage")
    search.add_argument("--json", action="store_true")
    search.set_defaults(func=_cmd_search)

    ev = sub.add_parser("evaluate", help="run a test set through approaches and print the metrics")
    ev.add_argument("testset", nargs="?", help="JSONL or CSV test set (default: the sample evaluation set)")
    ev.add_argument("--modes", default="base,prompted,rag,finetuned,hybrid")
    ev.add_argument("--prompts", metavar="FILE", help="prompt templates as JSON (default: the workspace's)")
    ev.add_argument("--examples", type=int, help="few-shot examples for the prompted approach (default: 3)")
    ev.add_argument("--adapter", help="adapter name (for finetuned and hybrid)")
    _batch_answer_args(ev, "only the first N questions")
    ev.add_argument("--label", help="a label stored with the run")
    ev.add_argument("--repetition-penalty", type=float, default=GenerationConfig.repetition_penalty,
                    help=help_for(GenerationConfig, "repetition_penalty"))
    ev.add_argument("--penalize-prompt", action="store_true", help=help_for(GenerationConfig, "penalize_prompt"))
    ev.add_argument("--adapter-repetition-penalty", type=float,
                    default=GenerationConfig.adapter_repetition_penalty,
                    help=help_for(GenerationConfig, "adapter_repetition_penalty"))
    ev.add_argument("--top-k", type=int, help="passages for RAG and hybrid (default: the workspace's tuned "
                    "count for this model, see tune-passages, else 5)")
    ev.add_argument("--json", action="store_true", help="print the summary as JSON")
    ev.set_defaults(func=_cmd_evaluate)

    tp = sub.add_parser("tune-passages", help="choose RAG's passage count on the training pairs (its fair best shot)")
    tp.add_argument("pairs", nargs="?", help="training pairs (default: the workspace's latest)")
    tp.add_argument("--candidates", default="1,2,3,5", help="passage counts to try, comma-separated")
    _batch_answer_args(tp, "only the first N answerable pairs")
    tp.set_defaults(func=_cmd_tune_passages)

    rj = sub.add_parser("rejudge", help="give stored evaluation runs the current judge's verdicts (no model runs)")
    rj.add_argument("run_ids", nargs="*", help="run ids (default: every run judged by an earlier judge version)")
    rj.add_argument("--workspace", default="default")
    rj.add_argument("--json", action="store_true", help="print each named run's summary as JSON")
    rj.set_defaults(func=_cmd_rejudge)

    serve = sub.add_parser("serve", help="serve the local model and a workspace's adapters as an OpenAI-compatible API")
    serve.add_argument("--workspace", default="default", help="whose adapters to serve (by name)")
    serve.add_argument("--model", help=MODEL_HELP)
    serve.add_argument("--model-name", help="the name clients use for the base model (default: the generator id)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--embedder", default=DEFAULT_EMBEDDER, help="embedder served at /v1/embeddings ('' for none)")
    serve.add_argument("--api-key-env", action="store_true",
                       help="require the key in WORKBENCH_SERVE_API_KEY as 'Authorization: Bearer KEY'")
    serve.set_defaults(func=_cmd_serve)

    from .config import TrainConfig

    d = TrainConfig()
    from .raft import RAFT_DEFAULTS  # light: no model libraries
    train = sub.add_parser("train", help="train a LoRA/QLoRA adapter from training pairs (JSONL or CSV)")
    train.add_argument("pairs", help="chat JSONL, Alpaca JSONL, prompt/completion JSONL or CSV")
    train.add_argument("--workspace", default="default")
    train.add_argument("--name", help="adapter name (default: adapter-DATE-TIME)")
    train.add_argument("--model", help="base model id (default: the workspace's model, see `model`)")
    train.add_argument("--method", default=d.method, choices=["auto", "lora", "qlora"], help=help_for(TrainConfig, "method"))
    train.add_argument("--rank", type=int, default=d.rank, help=help_for(TrainConfig, "rank"))
    train.add_argument("--alpha", type=int, help="LoRA alpha (default 2 x rank)")
    train.add_argument("--dropout", type=float, help=help_for(TrainConfig, "dropout") + f" (default {d.dropout:g}; "
                                                      f"with --with-context {RAFT_DEFAULTS.dropout:g})")
    train.add_argument("--precision", default=d.precision, choices=["auto", "bf16", "fp32"],
                       help=help_for(TrainConfig, "precision"))
    train.add_argument("--epochs", type=float, help=help_for(TrainConfig, "epochs") + f" (default {d.epochs:g}; "
                                                     f"with --with-context {RAFT_DEFAULTS.epochs:g})")
    train.add_argument("--lr", type=float, default=d.learning_rate, help=help_for(TrainConfig, "learning_rate"))
    train.add_argument("--max-length", type=int, help=help_for(TrainConfig, "max_length") + f" (default "
                                                         f"{d.max_length}; with --with-context {RAFT_DEFAULTS.max_length})")
    train.add_argument("--batch-size", type=int, help=help_for(TrainConfig, "batch_size") + f" (default {d.batch_size}; "
                                                        f"with --with-context {RAFT_DEFAULTS.batch_size})")
    train.add_argument("--target-modules", default=d.target_modules, help=help_for(TrainConfig, "target_modules"))
    train.add_argument("--val-fraction", type=float, default=d.val_fraction, help=help_for(TrainConfig, "val_fraction"))
    train.add_argument("--seed", type=int, default=d.seed, help=help_for(TrainConfig, "seed"))
    train.add_argument("--max-steps", type=int, help="stop after this many steps (quick checks)")
    train.add_argument("--top-layers", type=int, help=help_for(TrainConfig, "top_layers") + " (default all)")
    train.add_argument("--with-context", action="store_true",
                       help="retrieval-aware: put the passages the workspace's index retrieves in each pair's prompt, "
                            "in the hybrid's format")
    train.add_argument("--preset", choices=["quick", "balanced", "thorough"],
                       help="with --with-context: the settings to start from; 'quick' (default) fits a workshop "
                            "on any CPU, 'thorough' (3 whole passages, 3 epochs, max length 768) learns to read the "
                            "passages best, at four times the training time, and 'balanced' (the same with each "
                            "passage cut to its 5 best sentences) at about twice it (docs/quality.md)")
    train.add_argument("--context-passages", type=int, help=help_for(TrainConfig, "context_passages")
                       + f" (default {RAFT_DEFAULTS.context_passages})")
    train.add_argument("--context-sentences", type=int, help=help_for(TrainConfig, "context_sentences"))
    train.add_argument("--distractor-share", type=float, help=help_for(TrainConfig, "distractor_share"))
    train.add_argument("--keep-good-rows", action="store_true", help="train on the good rows when some are bad")
    train.set_defaults(func=_cmd_train)

    model = sub.add_parser("model", help="show or choose the model a workspace answers and trains with")
    model.add_argument("model_id", nargs="?", help="generator id to choose (e.g. local:gemma3-270m, hf:ORG/NAME, "
                                                    "hf:/path/to/model.gguf, compat:URL#MODEL)")
    model.add_argument("--workspace", default="default")
    model.add_argument("--list", action="store_true", help="list recommended models and whether each is here")
    model.add_argument("--download", action="store_true", help="download an hf: model from the hub first")
    model.set_defaults(func=_cmd_model)

    fac = sub.add_parser("facilitator", help="workshop mode: set the facilitator passphrase (stored as a hash)")
    fac.add_argument("--set-passphrase", action="store_true", help="ask for a passphrase and store its hash")
    fac.add_argument("--print-hash", action="store_true",
                     help="print the hash, for WORKBENCH_FACILITATOR_HASH, without storing anything")
    fac.add_argument("--stdin", action="store_true", help="read the passphrase from standard input (scripts)")
    fac.set_defaults(func=_cmd_facilitator)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    top_k = getattr(args, "top_k", None)
    if top_k is not None and not 1 <= top_k <= 50:  # refused before any model loads
        print(f"error: expected --top-k between 1 and 50, got {top_k}.", file=sys.stderr)
        return 2
    try:
        if getattr(args, "model", "") is None and args.func is not _cmd_model:
            from .model_choice import generator_for

            args.model = generator_for(getattr(args, "workspace", "default"))
        return args.func(args)
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
