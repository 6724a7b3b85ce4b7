"""bfloat16 autocast against float32, for every preset, on this machine's CPU.

    python benchmarks/amp.py [--reps 5] [--steps 4] [--batch-size 128] [--json FILE]

Times training steps (forward, loss, backward, AdamW step) of each preset's
model in float32 and under bfloat16 autocast, the two interleaved in one
process, and prints the medians and their ratio with the CPU model and what
torch reports of it. ``fit``'s "auto" precision (``choose_amp``) follows
these figures: whether bfloat16 pays depends on the CPU, the torch version
and the model's width, so measure it on the CPU you have.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from throughput import machine_info  # noqa: E402

from vit_tutorial.config import CNN_PRESETS, PRESETS, build_model  # noqa: E402
from vit_tutorial.training import choose_amp, make_optimizer, train_step  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--steps", type=int, default=4, help="timed steps per variant and repetition")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--presets", nargs="*", default=[n for n in (*PRESETS, *CNN_PRESETS) if n not in ("tiny",)])
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    cpu = torch.device("cpu")
    info = machine_info(cpu)
    print(f"{info['date']}  {info['cpu']}, {info['cores_available']} cores, torch {info['torch']} "
          f"({info['torch_threads']} threads)")
    print(f"CPU capability torch uses: {info['cpu_capability']}; native bfloat16: {info['cpu_bf16'] or 'no'}")
    print(f"batch {args.batch_size}, {args.reps} repetitions of {args.steps} timed steps, medians\n")
    rows = []
    for name in args.presets:
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
        row = dict(preset=name, width=getattr(cfg, "embed_dim", None), parameters=model.num_parameters(),
                   float32=fp32, bfloat16=bf16, ratio=bf16 / fp32,
                   auto=str(auto).replace("torch.", "") if auto else "float32")
        rows.append(row)
        print(f"{name:22s} width {str(row['width'] or '-'):>4s}  {row['parameters']:>8,d} params  "
              f"float32 {fp32:6.0f} img/s  bfloat16 {bf16:6.0f} img/s  ratio {bf16 / fp32:4.2f}  "
              f"fit's auto: {row['auto']}")
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
