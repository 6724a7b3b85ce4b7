"""The command line: ``python -m vit_tutorial train | evaluate | predict``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from .errors import VitTutorialError

EXIT_ERROR = 2


def _add_data_args(p):
    p.add_argument("--data-root", default="data", help="folder for the datasets (default: data)")
    p.add_argument("--offline", action="store_true", help="never try to download")


def build_parser() -> argparse.ArgumentParser:
    from .config import PRESETS
    from .data import DATASETS

    parser = argparse.ArgumentParser(prog="python -m vit_tutorial",
                                     description="Train, evaluate and use the book's Vision Transformer.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a ViT and write its checkpoint and figures")
    t.add_argument("--dataset", default="mnist", help=f"one of {', '.join(DATASETS)} (default: mnist)")
    t.add_argument("--out", required=True, help="folder for checkpoint.pt, history.json and the figures")
    t.add_argument("--preset", help=f"model preset, one of {', '.join(PRESETS)} (default: the dataset's; "
                   "tiny fits any dataset's images)")
    t.add_argument("--epochs", type=int, help="epochs (default: the dataset's recipe)")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    t.add_argument("--quick", action="store_true", help="a short run on 1,000 images, as in CI")
    t.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_data_args(t)

    e = sub.add_parser("evaluate", help="accuracy and confusion matrix of a checkpoint")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--dataset", default="mnist")
    e.add_argument("--split", default="val", choices=["train", "val", "test"],
                   help="which split (default: val; report test once, at the end)")
    e.add_argument("--device")
    _add_data_args(e)

    p = sub.add_parser("predict", help="classify one image file")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--image", required=True, help="an image file of the model's size (e.g. 28x28 for MNIST)")
    p.add_argument("--top", type=int, default=1, help="print the top K classes (default: 1)")
    return parser


def read_image(path: str | Path, model) -> torch.Tensor:
    """An image file as a (1, C, H, W) tensor in [0, 1], checked against the model's input size."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise VitTutorialError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            im = im.convert("L" if model.config.in_channels == 1 else "RGB")
    except (UnidentifiedImageError, OSError, ValueError):
        raise VitTutorialError(f"cannot read {path} as an image") from None
    S = model.config.image_size
    if im.size != (S, S):
        raise VitTutorialError(f"{path} is {im.size[0]}x{im.size[1]} pixels; the model takes {S}x{S} images")
    x = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).float() / 255
    x = x.view(S, S, -1).permute(2, 0, 1)  # (H, W, C) -> (C, H, W)
    return x.unsqueeze(0)


def model_config(name: str, dataset: str, image_shape: tuple):
    """The preset ``name`` for images of ``image_shape`` (C, H, W).

    "tiny" is a size, not an image format: for other images than its 28x28
    grey ones it takes the image size, patches and normalisation of the
    dataset's own preset. Other presets are used as they are (fit refuses
    images they do not take).
    """
    from .config import preset

    config = preset(name)
    if name == "tiny" and tuple(image_shape) != (config.in_channels, config.image_size, config.image_size):
        images = preset(dataset)
        config = config.replace(**{k: getattr(images, k)
                                   for k in ("image_size", "patch_size", "in_channels", "mean", "std")})
    return config


def cmd_train(args) -> None:
    from .data import load_dataset
    from .evaluation import evaluate
    from .model import ViT
    from .plots import plot_accuracy, plot_confusion
    from .training import QUICK_TRAIN_SIZE, fit, recipe
    from .utils import set_seed

    changes = {k: v for k, v in dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr).items()
               if v is not None}
    splits = load_dataset(args.dataset, args.data_root, download=not args.offline)
    kwargs = recipe(args.dataset, quick=args.quick, full=splits.full, **changes)
    set_seed(args.seed)
    train = splits.train.sample(QUICK_TRAIN_SIZE, args.seed) if args.quick else splits.train
    model = ViT(model_config(args.preset or args.dataset, args.dataset, splits.train.image_shape))
    out = Path(args.out)
    print(f"Training on {len(train)} images of {splits.source}; {model.num_parameters():,} parameters; "
          f"writing to {out}")
    history = fit(model, train, splits.val, **kwargs, seed=args.seed, device=args.device, out_dir=out,
                  resume=args.resume, progress=not args.no_progress)
    plot_accuracy(history, title=f"ViT on {args.dataset}: accuracy per epoch").savefig(out / "accuracy.png", dpi=120)
    for split, data in (("train", train), ("val", splits.val)):
        ev = evaluate(model, data, device=args.device)
        name = "training" if split == "train" else "validation"
        plot_confusion(ev, title=f"{name} set: accuracy {ev.accuracy:.2%}").savefig(out / f"cm_{split}.png", dpi=120)
        print(f"{name} accuracy: {ev.accuracy:.2%} ({len(data)} images)")
    print(f"Wrote {out / 'checkpoint.pt'}, history.json, accuracy.png, cm_train.png, cm_val.png")


def cmd_evaluate(args) -> None:
    from .checkpoint import load_checkpoint
    from .data import load_dataset
    from .evaluation import evaluate

    model = load_checkpoint(args.checkpoint)
    splits = load_dataset(args.dataset, args.data_root, download=not args.offline)
    data = getattr(splits, args.split)
    if tuple(data.image_shape) != (model.config.in_channels, model.config.image_size, model.config.image_size):
        raise VitTutorialError(f"{args.dataset} images are {tuple(data.image_shape)}; the checkpoint's model "
                               f"takes {(model.config.in_channels, model.config.image_size, model.config.image_size)}")
    ev = evaluate(model, data, device=args.device)
    print(f"{args.split} accuracy: {ev.accuracy:.2%} on {len(data)} images of {splits.source}")
    print("per class: " + ", ".join(f"{c} {a:.1%}" for c, a in zip(ev.classes, ev.per_class_accuracy.tolist())))
    print("confusion matrix (rows: true class, columns: predicted class):")
    for row in ev.confusion.tolist():
        print(" ".join(f"{v:5d}" for v in row))


def cmd_predict(args) -> None:
    from .checkpoint import model_from_payload, read_checkpoint

    payload = read_checkpoint(args.checkpoint)
    model = model_from_payload(payload, args.checkpoint)
    x = read_image(args.image, model)
    with torch.no_grad():
        probs = model(x).softmax(-1)[0]
    classes = payload.get("classes") or [str(i) for i in range(len(probs))]
    top = probs.topk(min(args.top, len(probs)))
    for p, i in zip(top.values.tolist(), top.indices.tolist()):
        print(f"{classes[i]}\t{p:.4f}")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        {"train": cmd_train, "evaluate": cmd_evaluate, "predict": cmd_predict}[args.command](args)
    except VitTutorialError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted; every finished epoch is saved: rerun with --resume to continue", file=sys.stderr)
        return 130
    return 0
