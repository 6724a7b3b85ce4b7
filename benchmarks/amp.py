"""bfloat16 autocast against float32, for every model of the book, on this machine's CPU.

    python benchmarks/amp.py [--reps 5] [--steps 4] [--batch-size 128] [--record] [--json FILE]

Times training steps (forward, loss, backward, AdamW step) of each model's
model in float32 and under bfloat16 autocast, the two interleaved in one
process, and prints the medians and their ratio with the CPU model and what
torch reports of it. ``fit``'s "auto" precision (``choose_amp``) follows
these figures: whether bfloat16 pays depends on the CPU, the torch version
and the model's width, so measure it on the CPU you have. ``--record`` keeps
the measurement as a speed row (``results/speed/``) for the speed page.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from vit_tutorial import registry  # noqa: E402
from vit_tutorial.config import build_model  # noqa: E402
from vit_tutorial.machine import machine_info  # noqa: E402
from vit_tutorial.speed import record  # noqa: E402
from vit_tutorial.training import choose_amp, make_optimizer, train_step  # noqa: E402


def distinct_models() -> list:
    """One model id per distinct configuration (a taught model trains the same network as its untaught one)."""
    seen, out = set(), []
    for model_id in registry.ids():
        key = repr(registry.get(model_id).config)
        if key not in seen:
            seen.add(key)
            out.append(model_id)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--steps", type=int, default=4, help="timed steps per variant and repetition")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--models", nargs="*", default=distinct_models(), help="model ids (default: every distinct one)")
    p.add_argument("--record", action="store_true", help="keep the measurement as a speed row in results/speed/")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    cpu = torch.device("cpu")
    info = machine_info(cpu)
    print(f"{info['date']}  {info['cpu']}, {info['cores']} cores, torch {info['torch']} ({info['threads']} threads)")
    print(f"CPU capability torch uses: {info['capability']}; native bfloat16: {info['bf16'] or 'no'}")
    print(f"batch {args.batch_size}, {args.reps} repetitions of {args.steps} timed steps, medians\n")
    rows = []
    for name in args.models:
        model = build_model(name)
        cfg = model.config
        x = torch.rand(args.batch_size, cfg.in_channels, cfg.image_size, cfg.image_size)
        y = torch.randint(0, cfg.num_classes, (args.batch_size,))
        times = {"float32": [], "bfloat16": []}
        for _ in range(args.reps):
            for label, dtype in (("float32", None), ("bfloat16", torch.bfloat16)):
                opt = make_optimizer(model)
                for _ in range(2):  # untimed: first calls pick kernels
                    train_step(model, opt, x, y, autocast_dtype=dtype)
                start = time.perf_counter()
                for _ in range(args.steps):
                    train_step(model, opt, x, y, autocast_dtype=dtype)
                times[label].append(args.steps * args.batch_size / (time.perf_counter() - start))
        fp32, bf16 = statistics.median(times["float32"]), statistics.median(times["bfloat16"])
        auto = choose_amp(model, cpu, "auto")
        row = dict(model=name, width=getattr(cfg, "embed_dim", None), parameters=model.num_parameters(),
                   float32=fp32, bfloat16=bf16, ratio=bf16 / fp32,
                   auto=str(auto).replace("torch.", "") if auto else "float32")
        rows.append(row)
        print(f"{name:22s} width {str(row['width'] or '-'):>4s}  {row['parameters']:>8,d} params  "
              f"float32 {fp32:6.0f} img/s  bfloat16 {bf16:6.0f} img/s  ratio {bf16 / fp32:4.2f}  "
              f"fit's auto: {row['auto']}")
    if args.record:
        settings = {"batch": args.batch_size, "repetitions": args.reps, "steps": args.steps}
        command = "python benchmarks/amp.py " + " ".join(argv if argv is not None else sys.argv[1:])
        print(f"recorded in {record('amp', info, settings, rows, command)}")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
