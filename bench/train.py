"""Adapter training time and held-out format compliance, on the sample training pairs.

    python bench/train.py [--json PATH] [--pairs 40] [--held-out 10] [--method auto]

Trains on the first --pairs sample pairs for 3 epochs with the default settings (no validation split)
and checks the format of --held-out other sample pairs' questions answered by the base model and by
the adapter (greedy, 96 new tokens). Keys: train_wall_s (the training loop), train_total_s (with
model loading and saving), format_compliance_before, format_compliance_after.
"""

from __future__ import annotations

import os
import tempfile
import time

from _common import parser, report


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=40)
    p.add_argument("--held-out", type=int, default=10)
    p.add_argument("--method", default="auto", choices=["auto", "lora", "qlora"])
    args = p.parse_args()
    os.environ["WORKBENCH_HOME"] = tempfile.mkdtemp(prefix="wb-bench-train-")

    from workbench import models, samples
    from workbench.config import GenerationConfig, TrainConfig
    from workbench.formats import FormatCheck, compliance
    from workbench.pairs import read_pairs
    from workbench.training import train_adapter

    path = samples.sample_dir() / "training_pairs.jsonl"
    pairs, _ = read_pairs(path.name, path.read_bytes())
    train, held = pairs[: args.pairs], pairs[args.pairs: args.pairs + args.held_out]
    models.get_generator()  # convert/load outside the timed part
    config = TrainConfig(method=args.method, val_fraction=0.0)
    started = time.perf_counter()
    trained = train_adapter(train, config, workspace="bench", name="bench")
    total = time.perf_counter() - started
    print(f"trained {trained.train_pairs} pairs x {config.epochs} epochs ({trained.method}, "
          f"{trained.meta.get('device_name')}): {trained.steps} steps, loop {trained.wall_s or 0:.1f} s, "
          f"total {total:.1f} s, final loss {trained.final_train_loss or 0:.3f}")
    generator = models.get_generator()
    gen_config = GenerationConfig(max_new_tokens=96)
    check = FormatCheck()
    before = [generator.generate(q.prompt_messages(), gen_config).text for q in held]
    after = [generator.generate(q.prompt_messages(), gen_config, adapter=trained.path).text for q in held]
    for q, a in zip(held, after):
        print(f"  {'ok ' if check.passes(a) else 'BAD'} {q.question[:60]!r} -> {a[:80]!r}")
    report(f"Adapter training ({args.pairs} pairs x {config.epochs} epochs, method {trained.method})", [
        ("train_wall_s", trained.wall_s, "s, training loop"),
        ("train_total_s", total, "s, with base model loading and adapter saving"),
        ("format_compliance_before", compliance(before, check), f"share of {len(held)} held-out answers, base model"),
        ("format_compliance_after", compliance(after, check), f"share of {len(held)} held-out answers, adapter"),
    ], args.json)


if __name__ == "__main__":
    main()
