"""Command line: ``python -m workbench doctor|ask ...``; drives the same core functions as the app.

A ``WorkbenchError`` is printed as a message and exits with code 2; anything else is a bug and
shows its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

from .config import DEFAULT_EMBEDDER, DEFAULT_GENERATOR, GenerationConfig, help_for
from .errors import WorkbenchError


def _cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import run_doctor

    report = run_doctor(args.generator, args.embedder, deep=args.deep)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
    return 0 if report.ok else 1


def _cmd_ask(args: argparse.Namespace) -> int:
    from . import models
    from .progress import TqdmSink
    from .strategies import answer_question

    config = GenerationConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed)
    sink = TqdmSink()
    generator = models.get_generator(args.model, progress=sink)
    sink.close()
    for mode in args.modes.split(","):
        mode = mode.strip()
        print(f"== {mode} ({generator.model_id})")
        answer = answer_question(args.question, generator, mode, config,
                                 on_text=lambda piece: print(piece, end="", flush=True))
        print()
        if args.json:
            print(json.dumps(answer.to_dict(), indent=2))
            continue
        ttft = answer.timing("ttft") or 0.0
        decode = answer.timing("decode") or 0.0
        tok_s = (answer.usage.tokens_out - 1) / decode if decode > 0 and answer.usage.tokens_out > 1 else 0.0
        print(f"-- ttft {ttft * 1000:.0f} ms | decode {decode:.2f} s ({tok_s:.1f} tok/s) | "
              f"tokens in {answer.usage.tokens_in}, out {answer.usage.tokens_out} | "
              f"total {answer.total_s:.2f} s | finish: {answer.finish_reason}")
    return 0


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
    ask.add_argument("--modes", default="base", help="comma-separated modes (available: base)")
    ask.add_argument("--model", default=DEFAULT_GENERATOR, help="generator id (see doctor)")
    ask.add_argument("--max-new-tokens", type=int, default=GenerationConfig.max_new_tokens,
                     help=help_for(GenerationConfig, "max_new_tokens"))
    ask.add_argument("--temperature", type=float, default=0.0, help=help_for(GenerationConfig, "temperature"))
    ask.add_argument("--seed", type=int, default=0, help=help_for(GenerationConfig, "seed"))
    ask.add_argument("--json", action="store_true", help="print each answer as JSON")
    ask.set_defaults(func=_cmd_ask)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except WorkbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
