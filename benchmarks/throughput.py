"""Training throughput of our ViT against timm's, vit-pytorch's and torchvision's.

One training step is a forward pass, cross-entropy, a backward pass and an
AdamW step, on one fixed random batch of images (B, 1, 28, 28) in [0, 1].
Every model has the same shape: width 128, depth 6, 8 heads, MLP 512, patch
7 or 4. The variants are interleaved in one process (each repetition runs
them all, in a rotating order), so that a slow spell on a shared machine
hits them alike; the figure of a variant is its median over repetitions.

Variants:

- each peer at its defaults: float32, no autocast, plain AdamW;
- ours in float32 ("same precision"), the same step as the peers;
- ours on the package's default training path: the autocast dtype that
  ``vit_tutorial.training.choose_amp(model, device, "auto")`` picks, and the
  rest of what ``fit`` does in a step (label smoothing, weight decay on the
  weight matrices only, gradient clipping, the learning-rate schedule);
- with ``--peers-amp``, also each peer under that same autocast;
- with ``--ablation``, also our default path with the fused attention kernel
  forced on (the choice ``Attention.use_fused`` makes, measured).

Each variant's speed is also put beside the machine's limit: the FLOPs of a
training image (three times those of its forward pass, two per multiply-add,
attention included, counted by ``torch.utils.flop_counter``) times its
images per second, as a share of the best FLOP/s a plain square matrix
product reaches on the same threads in the same precision (the measured
peak, float32 and bfloat16).

Usage:
    python benchmarks/throughput.py                 # patches 7 and 4, 5 repetitions of 5 steps
    python benchmarks/throughput.py --quick         # a smoke test: 2 repetitions of 2 steps, batch 64
    python benchmarks/throughput.py --patch 4 --json results.json
    python benchmarks/throughput.py --fit-cuda      # also one epoch of fit on the GPU, where there is one

The peers are the ``bench`` extra (``pip install -e .[bench]``); a peer that
is missing is skipped. Torch's thread count is left as it is.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

# Run from a checkout without installing: the package sits one folder up.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vit_tutorial import ImageDataset, ViT, ViTConfig, fit, set_seed  # noqa: E402
from vit_tutorial.errors import VitTutorialError  # noqa: E402
from vit_tutorial.machine import cpu_bf16_support, cpu_model, machine_header  # noqa: E402,F401 (machine_header re-exported)
from vit_tutorial.machine import machine_info as package_machine_info  # noqa: E402
from vit_tutorial.training import choose_amp, make_optimizer, train_step, warmup_cosine  # noqa: E402
from vit_tutorial.utils import resolve_device  # noqa: E402

# The configuration every model is built at (the patch size is a flag).
IMAGE_SIZE, IN_CHANNELS, NUM_CLASSES = 28, 1, 10
WIDTH, DEPTH, HEADS, MLP_DIM = 128, 6, 8, 512

# fit's defaults, used by the "default training path" variant.
FIT_LR, FIT_WEIGHT_DECAY, FIT_LABEL_SMOOTHING, FIT_GRAD_CLIP = 1e-3, 0.05, 0.1, 1.0

BENCH_HINT = "pip install -e .[bench]"


# --------------------------------------------------------------------------- models


def build_ours(patch: int) -> nn.Module:
    return ViT(ViTConfig(image_size=IMAGE_SIZE, patch_size=patch, in_channels=IN_CHANNELS, num_classes=NUM_CLASSES,
                         embed_dim=WIDTH, depth=DEPTH, num_heads=HEADS, mlp_ratio=MLP_DIM / WIDTH))


def build_timm(patch: int) -> nn.Module:
    from timm.models.vision_transformer import VisionTransformer

    return VisionTransformer(img_size=IMAGE_SIZE, patch_size=patch, in_chans=IN_CHANNELS, num_classes=NUM_CLASSES,
                             embed_dim=WIDTH, depth=DEPTH, num_heads=HEADS, mlp_ratio=MLP_DIM / WIDTH)


def build_vit_pytorch(patch: int) -> nn.Module:
    import vit_pytorch

    # dim_head defaults to 64 there; 16 = 128 / 8 gives the same width as the others.
    return vit_pytorch.ViT(image_size=IMAGE_SIZE, patch_size=patch, num_classes=NUM_CLASSES, dim=WIDTH, depth=DEPTH,
                           heads=HEADS, mlp_dim=MLP_DIM, channels=IN_CHANNELS, dim_head=WIDTH // HEADS)


def build_torchvision(patch: int) -> nn.Module:
    from torchvision.models import VisionTransformer

    model = VisionTransformer(image_size=IMAGE_SIZE, patch_size=patch, num_layers=DEPTH, num_heads=HEADS,
                              hidden_dim=WIDTH, mlp_dim=MLP_DIM, num_classes=NUM_CLASSES)
    # torchvision's patch embedding always takes 3 channels: swap in a 1-channel
    # one of the same kind, initialised as torchvision initialises its own.
    conv = nn.Conv2d(IN_CHANNELS, WIDTH, kernel_size=patch, stride=patch)
    nn.init.trunc_normal_(conv.weight, std=math.sqrt(1 / (IN_CHANNELS * patch * patch)))
    nn.init.zeros_(conv.bias)
    model.conv_proj = conv
    return model


PEERS = {"timm": build_timm, "vit-pytorch": build_vit_pytorch, "torchvision": build_torchvision}
PEER_NOTES = {
    "timm": "timm.models.vision_transformer.VisionTransformer",
    "vit-pytorch": "vit_pytorch.ViT (dim_head=16; extra LayerNorms in its patch embedding, no qkv bias)",
    "torchvision": "torchvision.models.VisionTransformer (conv_proj replaced by a 1-channel Conv2d)",
}


def num_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --------------------------------------------------------------------------- the machine's limit


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    """The best FLOP/s of an (n, n) @ (n, n) product in ``dtype`` over ``reps`` timed runs: the measured peak."""
    g = torch.Generator().manual_seed(0)
    a = torch.rand(n, n, generator=g).to(device, dtype)
    b = torch.rand(n, n, generator=g).to(device, dtype)
    best = float("inf")
    for i in range(reps + 1):  # the first run is not counted: it picks the kernel
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:
            best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def train_flops(model: nn.Module, device: torch.device) -> float:
    """FLOPs of training on one image: 3 times those of its forward pass (the backward pass costs about twice
    the forward), two per multiply-add, attention included."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(2, IN_CHANNELS, IMAGE_SIZE, IMAGE_SIZE, device=device)
    # In training mode, as it is timed: in evaluation mode without gradients some models take a fused path whose
    # matrix products the counter does not see.
    with FlopCounterMode(display=False) as counter:
        model.train()(x)
    return 3.0 * counter.get_total_flops() / len(x)


# --------------------------------------------------------------------------- one training step


@dataclass
class Variant:
    """One model with its optimizer and the settings of its training step."""

    name: str
    model: nn.Module
    optimizer: torch.optim.Optimizer
    autocast_dtype: torch.dtype | None = None
    label_smoothing: float = 0.0
    grad_clip: float | None = None
    scheduler: object = None
    is_ours: bool = False
    is_default_path: bool = False
    tag: str = ""  # what else sets this variant apart, for its label
    rates: list = field(default_factory=list)  # images per second, one per repetition
    flops: float = 0.0  # FLOPs of training on one image (train_flops)

    @property
    def precision(self) -> str:
        return str(self.autocast_dtype).replace("torch.", "") + " autocast" if self.autocast_dtype else "float32"


def step(v: Variant, x: torch.Tensor, y: torch.Tensor, device: torch.device) -> float:
    """One training step through the package's own ``train_step`` (the body of ``fit``'s loop).

    For the "default training path" variant the settings are fit's; for the
    others it is a plain float32 step.
    """
    loss, logits = train_step(v.model, v.optimizer, x, y, autocast_dtype=v.autocast_dtype,
                              label_smoothing=v.label_smoothing, grad_clip=v.grad_clip, scheduler=v.scheduler)
    # fit reads the loss and counts the correct answers every step; so does every variant here.
    loss_value = loss.item()
    (logits.argmax(1) == y).sum().item()
    return loss_value


def images_per_second(v: Variant, x, y, device, warmup: int, steps: int) -> float:
    v.model.train()
    for _ in range(warmup):
        step(v, x, y, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step(v, x, y, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps * x.shape[0] / (time.perf_counter() - t0)


def make_variants(patch: int, device: torch.device, peers_amp: bool, total_steps: int,
                  ablation: bool = False) -> tuple[list, dict]:
    """The variants for one patch size, and the parameter count of each model."""
    variants, params = [], {}

    set_seed(0)
    ours = build_ours(patch).to(device)
    params["ours"] = num_parameters(ours)
    variants.append(Variant("ours", ours, torch.optim.AdamW(ours.parameters(), lr=FIT_LR), is_ours=True))

    # The default training path: what fit does with its defaults.
    set_seed(0)
    ours_fit = build_ours(patch).to(device)
    dtype = choose_amp(ours_fit, device, "auto")
    opt = make_optimizer(ours_fit, FIT_LR, FIT_WEIGHT_DECAY)
    # fit's schedule over an epoch of 60,000 images; it only sets the learning rate.
    steps_per_epoch = max(total_steps, 60_000 // 256)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, steps_per_epoch, 10 * steps_per_epoch))
    variants.append(Variant("ours", ours_fit, opt, autocast_dtype=dtype, label_smoothing=FIT_LABEL_SMOOTHING,
                            grad_clip=FIT_GRAD_CLIP, scheduler=sched, is_ours=True, is_default_path=True))
    if ablation and dtype is not None:
        # The default path, but with PyTorch's fused attention kernel forced on: what Attention.use_fused avoids.
        set_seed(0)
        fused = build_ours(patch).to(device)
        for block in fused.blocks:
            block.attn.fused = True
        opt = make_optimizer(fused, FIT_LR, FIT_WEIGHT_DECAY)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: warmup_cosine(s, steps_per_epoch, 10 * steps_per_epoch))
        variants.append(Variant("ours", fused, opt, autocast_dtype=dtype, label_smoothing=FIT_LABEL_SMOOTHING,
                                grad_clip=FIT_GRAD_CLIP, scheduler=sched, is_ours=True, tag="fused attention"))

    for name, build in PEERS.items():
        try:
            set_seed(0)
            model = build(patch).to(device)
        except ImportError:
            print(f"{name} is not installed: skipping it ({BENCH_HINT})")
            continue
        params[name] = num_parameters(model)
        variants.append(Variant(name, model, torch.optim.AdamW(model.parameters(), lr=FIT_LR)))
        if peers_amp and dtype is not None:
            set_seed(0)
            model = build(patch).to(device)
            opt = torch.optim.AdamW(model.parameters(), lr=FIT_LR)
            variants.append(Variant(name, model, opt, autocast_dtype=dtype))
    return variants, params


# --------------------------------------------------------------------------- the comparison


def label(v: Variant) -> str:
    if v.is_default_path:
        return f"ours, default path ({v.precision})"
    return f"{v.name} ({v.precision}{', ' + v.tag if v.tag else ''})"


def run_patch(patch: int, args, device: torch.device, peaks: dict | None = None) -> dict:
    B = args.batch_size
    N = (IMAGE_SIZE // patch) ** 2
    print(f"\n=== patch {patch}: {N} patches + class token, batch {B}, "
          f"{args.reps} repetitions of {args.warmup} warm-up + {args.steps} timed steps ===")
    variants, params = make_variants(patch, device, args.peers_amp, args.reps * (args.warmup + args.steps),
                                     ablation=args.ablation)

    print("parameters (trainable):")
    for name, n in params.items():
        print(f"  {name:12s} {n:>10,d}   {PEER_NOTES.get(name, 'vit_tutorial.ViT')}")

    for v in variants:
        v.flops = train_flops(v.model, device)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(B, IN_CHANNELS, IMAGE_SIZE, IMAGE_SIZE, generator=g).to(device)
    y = torch.randint(0, NUM_CLASSES, (B,), generator=g).to(device)

    n = len(variants)
    for rep in range(args.reps):
        order = variants[rep % n:] + variants[:rep % n]
        for v in order:
            v.rates.append(images_per_second(v, x, y, device, args.warmup, args.steps))
        print(f"  repetition {rep + 1}/{args.reps}: " + ", ".join(f"{label(v)} {v.rates[-1]:.0f}" for v in variants))

    median = {id(v): statistics.median(v.rates) for v in variants}
    peaks = peaks or {}
    share = {id(v): median[id(v)] * v.flops / peaks[v.precision] if v.precision in peaks else float("nan")
             for v in variants}
    print(f"\n  {'variant':44s} {'images/s (median)':>18s} {'min':>8s} {'max':>8s} {'GFLOP/s':>8s} "
          f"{'of peak':>8s}")
    for v in variants:
        print(f"  {label(v):44s} {median[id(v)]:18.0f} {min(v.rates):8.0f} {max(v.rates):8.0f} "
              f"{median[id(v)] * v.flops / 1e9:8.1f} {share[id(v)]:8.0%}")

    ours_fp32 = next(v for v in variants if v.is_ours and v.autocast_dtype is None and not v.is_default_path)
    ours_default = next(v for v in variants if v.is_default_path)
    peers_fp32 = [v for v in variants if not v.is_ours and v.autocast_dtype is None]
    peers_amp = [v for v in variants if not v.is_ours and v.autocast_dtype is not None]
    ratios = {}
    if peers_fp32:
        best = max(peers_fp32, key=lambda v: median[id(v)])
        r_same = median[id(ours_fp32)] / median[id(best)]
        r_default = median[id(ours_default)] / median[id(best)]
        ratios = {"fastest_peer": best.name,
                  "ours_fp32_over_fastest_peer_fp32": r_same,
                  "ours_default_over_fastest_peer_default": r_default}
        print(f"\n  fastest peer at its defaults: {best.name} ({median[id(best)]:.0f} images/s)")
        print(f"  same precision:  ours float32 / {best.name} float32 = {r_same:.2f}   (target: 1.00 or more)")
        print(f"  default paths:   ours {ours_default.precision} / {best.name} float32 = {r_default:.2f}"
              f"   (target: 1.50 or more)")
        if ours_default.autocast_dtype is None:
            print("  (choose_amp picked float32 here, so the default path differs from the float32 row only by "
                  "fit's label smoothing, clipping and schedule)")
    else:
        print(f"\n  no peer could be built: no ratios ({BENCH_HINT})")
    if peers_amp:
        best_amp = max(peers_amp, key=lambda v: median[id(v)])
        r = median[id(ours_default)] / median[id(best_amp)]
        ratios["fastest_peer_amp"] = best_amp.name
        ratios["ours_default_over_fastest_peer_same_autocast"] = r
        print(f"  same autocast:   ours {ours_default.precision} / {best_amp.name} {best_amp.precision} = {r:.2f}"
              "   (no target; shows how much of the gain is the precision)")

    return {
        "patch_size": patch,
        "num_patches": N,
        "batch_size": B,
        "parameters": params,
        "variants": [{"model": v.name, "label": label(v), "precision": v.precision,
                      "default_training_path": v.is_default_path, "images_per_second": v.rates,
                      "median": median[id(v)], "train_flops_per_image": v.flops,
                      "peak_share": share[id(v)]} for v in variants],
        "ratios": ratios,
    }


# --------------------------------------------------------------------------- fit on the GPU


def fit_cuda(patches: list, train_size: int = 20_000) -> list:
    """One epoch of ``fit`` with its defaults on the GPU, on random images; its own images per second."""
    if not torch.cuda.is_available():
        print("\n--fit-cuda: no GPU is present; skipped.")
        return []
    device = torch.device("cuda")
    print(f"\n=== fit on {torch.cuda.get_device_name(device)}: 1 epoch of {train_size:,} random 28x28 images, "
          "fit's defaults (batch 128, augmentation, autocast) ===")
    g = torch.Generator().manual_seed(0)
    data = ImageDataset(torch.randint(0, 256, (train_size, 1, IMAGE_SIZE, IMAGE_SIZE), dtype=torch.uint8, generator=g),
                        torch.randint(0, NUM_CLASSES, (train_size,), generator=g),
                        classes=[str(i) for i in range(NUM_CLASSES)], name="random")
    # A short run first, so that CUDA's start-up is not part of the figure.
    fit(build_ours(patches[0]), data.subset(range(min(1024, train_size))), epochs=1, device=device,
        progress=False, verbose=False)
    results = []
    for patch in patches:
        model = build_ours(patch)
        history = fit(model, data, epochs=1, device=device, progress=False, verbose=False)
        ips = history.images_per_second[-1]
        amp = str(choose_amp(model, device, "auto")).replace("torch.", "")
        print(f"  patch {patch}: {ips:,.0f} images/s ({history.seconds[-1]:.1f} s, autocast {amp})")
        results.append({"patch_size": patch, "images_per_second": ips, "seconds": history.seconds[-1],
                        "train_size": train_size, "autocast": amp, "gpu": torch.cuda.get_device_name(device)})
    return results


# --------------------------------------------------------------------------- the machine


def machine_info(device: torch.device) -> dict:
    """The package's record of the machine, plus the versions of the peers this benchmark times."""
    info = package_machine_info(device)
    for dist in ("timm", "vit-pytorch", "torchvision"):
        try:
            info[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            info[dist] = None
    return info


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=5, help="repetitions; 0 skips the comparison (default 5)")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps before each timing (default 2)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per variant and repetition (default 5)")
    p.add_argument("--patch", choices=["7", "4", "both"], default="both", help="patch size (default both)")
    p.add_argument("--batch-size", type=int, default=256, help="images per step (default 256)")
    p.add_argument("--quick", action="store_true", help="smoke test: 2 repetitions of 2 steps, batch 64")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda, when there is a GPU")
    p.add_argument("--peers-amp", action="store_true",
                   help="also time each peer under the autocast of our default path")
    p.add_argument("--ablation", action="store_true",
                   help="also time our default path with PyTorch's fused attention kernel forced on")
    p.add_argument("--fit-cuda", action="store_true", help="also run one epoch of fit on the GPU, if there is one")
    p.add_argument("--json", type=Path, help="write the results to this file")
    p.add_argument("--record", action="store_true", help="keep the measurement as a speed row in results/speed/")
    args = p.parse_args(argv)
    if args.quick:
        args.reps, args.steps, args.batch_size = 2, 2, 64
    if args.reps < 0 or args.steps < 1 or args.warmup < 0 or args.batch_size < 1:
        p.error("--reps, --warmup must be >= 0 and --steps, --batch-size >= 1")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    try:  # a device that cannot run here is refused in one line: the figures must say what they ran on
        device = resolve_device(args.device)
    except VitTutorialError as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    patches = [7, 4] if args.patch == "both" else [int(args.patch)]

    info = machine_info(device)
    print(f"{info['date']}  {info['cpu']}  ({info['cores']} cores available, torch threads {info['threads']})")
    print(f"torch {info['torch']}, CPU capability torch uses: {info['capability']}, native bfloat16: "
          f"{info['bf16'] or 'no'}, device: {device}"
          + (f" ({info['gpu']})" if "gpu" in info else ""))
    print("peers: " + ", ".join(f"{m} {info[m] or 'missing'}" for m in ("timm", "vit-pytorch", "torchvision")))

    peaks = {"float32": matmul_peak(device, torch.float32), "bfloat16 autocast": matmul_peak(device, torch.bfloat16)}
    print("measured peak (a 2048 x 2048 matrix product, best of 5): " +
          ", ".join(f"{k.split()[0]} {v / 1e9:.0f} GFLOP/s" for k, v in peaks.items()))
    results = {"machine": info, "peaks": peaks,
               "settings": {"reps": args.reps, "warmup": args.warmup, "steps": args.steps,
                            "batch_size": args.batch_size, "quick": args.quick,
                            "config": dict(image_size=IMAGE_SIZE, in_channels=IN_CHANNELS, num_classes=NUM_CLASSES,
                                           width=WIDTH, depth=DEPTH, heads=HEADS, mlp_dim=MLP_DIM)},
               "patches": [run_patch(patch, args, device, peaks) for patch in patches] if args.reps else []}
    if args.fit_cuda:
        results["fit_cuda"] = fit_cuda(patches)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nresults written to {args.json}")
    if args.record and results["patches"]:
        from vit_tutorial.speed import record, throughput_rows

        rows = throughput_rows(results["patches"])
        settings = {"batch": args.batch_size, "repetitions": args.reps, "steps": args.steps, "width": WIDTH,
                    "depth": DEPTH, "peak float32 GFLOP/s": round(peaks["float32"] / 1e9),
                    "peak bfloat16 GFLOP/s": round(peaks["bfloat16 autocast"] / 1e9)}
        command = "python benchmarks/throughput.py " + " ".join(argv if argv is not None else sys.argv[1:])
        print(f"recorded in {record('throughput', info, settings, rows, command)}")
    return results


if __name__ == "__main__":
    main()
