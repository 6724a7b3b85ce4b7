"""The command line: ``python -m vit_tutorial train | evaluate | predict``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from .errors import VitTutorialError

EXIT_ERROR = 2


def _add_data_args(p):
    p.add_argument("--data-root", default="data", help="folder for the datasets (default: data)")
    p.add_argument("--offline", action="store_true", help="never try to download")


def build_parser() -> argparse.ArgumentParser:
    from .config import CNN_PRESETS, PRESETS
    from .data import DATASETS

    parser = argparse.ArgumentParser(prog="python -m vit_tutorial",
                                     description="Train, evaluate and use the book's Vision Transformer.")
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a ViT and write its checkpoint and figures")
    t.add_argument("--dataset", default="mnist", help=f"one of {', '.join(DATASETS)} (default: mnist)")
    t.add_argument("--out", required=True, help="folder for checkpoint.pt, history.json and the figures")
    t.add_argument("--preset", help=f"model preset, one of {', '.join([*PRESETS, *CNN_PRESETS])} "
                   "(default: the dataset's; tiny fits any dataset's images)")
    t.add_argument("--epochs", type=int, help="epochs (default: the dataset's recipe)")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    t.add_argument("--quick", action="store_true", help="a short run on 1,000 images, as in CI")
    t.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    t.add_argument("--overwrite", action="store_true",
                   help="train anew even where --out already holds a checkpoint (it is replaced after epoch 1)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_data_args(t)

    e = sub.add_parser("evaluate", help="accuracy and confusion matrix of a checkpoint")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--dataset", help="the data to evaluate on (default: the checkpoint's own, else mnist); "
                   "another dataset than the checkpoint's is refused")
    e.add_argument("--split", default="val", choices=["train", "val", "test"],
                   help="which split (default: val; report test once, at the end)")
    e.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    _add_data_args(e)

    p = sub.add_parser("predict", help="classify pictures: any size, PNG or JPEG, dark ink on light or light on dark",
                       description="Classify pictures with a trained model. Each picture is first made to look like "
                       "the model's training data (for digits: grey, light ink on black, 20 pixels tall, centred "
                       "by its centre of mass in 28x28; see vit_tutorial/prepare.py).")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("images", nargs="*", metavar="IMAGE",
                   help="image files, or folders: every PNG and JPEG file inside, in name order")
    p.add_argument("--image", action="append", default=[], metavar="PATH",
                   help="an image file or folder, as IMAGE (kept for older scripts)")
    p.add_argument("--top", type=int, default=3, help="print the top K classes (default: 3)")
    p.add_argument("--json", action="store_true",
                   help='one JSON object per line and image: {"path", "index", "class", "probabilities": '
                   '{class: p} of every class}')
    p.add_argument("--show", metavar="OUT.png",
                   help="write a figure: each picture as the model sees it, beside its class probabilities")
    return parser


def model_config(name: str, dataset: str, image_shape: tuple):
    """The preset ``name`` for images of ``image_shape`` (C, H, W).

    "tiny" is a size, not an image format: for other images than its 28x28
    grey ones it takes the image size, patches and normalisation of the
    dataset's own preset. Other presets are used as they are (fit refuses
    images they do not take).
    """
    from .config import preset

    config = preset(name)
    if image_shape is None:
        return config
    if name == "tiny" and tuple(image_shape) != (config.in_channels, config.image_size, config.image_size):
        images = preset(dataset)
        config = config.replace(**{k: getattr(images, k)
                                   for k in ("image_size", "patch_size", "in_channels", "mean", "std")})
    return config


def cmd_train(args) -> None:
    from .checkpoint import check_run_folder
    from .config import build_model
    from .data import load_dataset
    from .evaluation import evaluate
    from .plots import plot_accuracy, plot_confusion
    from .training import QUICK_TRAIN_SIZE, amp_name, check_recipe, choose_amp, fit, recipe
    from .utils import resolve_device, set_seed

    start = time.perf_counter()
    changes = {k: v for k, v in dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr).items()
               if v is not None}
    check_recipe(changes)  # --epochs 0 and the like fail before any data is read or any file written
    device = resolve_device(args.device)  # likewise --device cuda without a GPU
    check_run_folder(args.out, args.resume, args.overwrite)  # a finished model is not trained over by accident
    config = model_config(args.preset or args.dataset, args.dataset, None)  # an unknown preset fails before any data
    splits = load_dataset(args.dataset, args.data_root, download=not args.offline)
    config = model_config(args.preset or args.dataset, args.dataset, splits.train.image_shape)
    kwargs = recipe(args.dataset, quick=args.quick, full=splits.full, preset=args.preset, **changes)
    teacher = kwargs.get("teacher")
    if isinstance(teacher, str):  # a distilled model learns from another of the book's models
        from .book import LOADED_FROM, with_teacher
        from .utils import shown_path

        kwargs = with_teacher(kwargs, args.dataset, splits, quick=args.quick, progress=not args.no_progress)
        print(f"Teacher: {teacher} from {shown_path(LOADED_FROM[teacher])} ({kwargs['distill']} distillation)")
    set_seed(args.seed)
    train = splits.train.sample(QUICK_TRAIN_SIZE, args.seed) if args.quick else splits.train
    model = build_model(config)
    out = Path(args.out)
    print(f"Training {args.preset or args.dataset} on {len(train)} images of {splits.source}; "
          f"{model.num_parameters():,} parameters; {kwargs['epochs']} epochs; writing to {out}")
    fit_start = time.perf_counter()
    history = fit(model, train, splits.val, **kwargs, seed=args.seed, device=device, out_dir=out,
                  resume=args.resume, progress=not args.no_progress)
    fit_seconds = time.perf_counter() - fit_start
    plot_accuracy(history, title=f"ViT on {args.dataset}: accuracy per epoch").savefig(out / "accuracy.png", dpi=120)
    for split, data in (("train", train), ("val", splits.val)):
        ev = evaluate(model, data, device=device)
        name = "training" if split == "train" else "validation"
        plot_confusion(ev, title=f"{name} set: accuracy {ev.accuracy:.2%}").savefig(out / f"cm_{split}.png", dpi=120)
        print(ev.summary(f"{name} accuracy"))
    print(f"Wrote {out / 'checkpoint.pt'}, history.json, accuracy.png, cm_train.png, cm_val.png")
    print(f"Wall time: {time.perf_counter() - start:.0f} s, of which {fit_seconds:.0f} s in fit "
          f"({amp_name(choose_amp(model, device))}, {torch.get_num_threads()} threads)")


def cmd_evaluate(args) -> None:
    from .checkpoint import check_dataset, checkpoint_dataset, model_from_payload, read_checkpoint
    from .data import load_dataset
    from .evaluation import evaluate
    from .utils import resolve_device

    device = resolve_device(args.device)
    payload = read_checkpoint(args.checkpoint)
    if args.dataset is None:
        args.dataset = (checkpoint_dataset(payload) or {}).get("name", "mnist")
    check_dataset(payload, args.dataset, args.checkpoint)  # before loading any data: a model for digits on clothes
    model = model_from_payload(payload, args.checkpoint)
    splits = load_dataset(args.dataset, args.data_root, download=not args.offline)
    data = getattr(splits, args.split)
    if tuple(data.image_shape) != (model.config.in_channels, model.config.image_size, model.config.image_size):
        raise VitTutorialError(f"{args.dataset} images are {tuple(data.image_shape)}; the checkpoint's model "
                               f"takes {(model.config.in_channels, model.config.image_size, model.config.image_size)}")
    ev = evaluate(model, data, device=device)
    interval = getattr(ev, "interval", None)  # Evaluation.interval: the Wilson 95 % interval, where it exists
    interval = interval() if callable(interval) else interval
    spread = f" (95 % interval {100 * interval[0]:.1f}-{100 * interval[1]:.1f} %)" if interval else ""
    print(f"{args.split} accuracy: {100 * ev.accuracy:.2f} %{spread} on {len(data)} images of {splits.source}")
    print("per class: " + ", ".join(f"{c} {a:.1%}" for c, a in zip(ev.classes, ev.per_class_accuracy.tolist())))
    print("confusion matrix (rows: true class, columns: predicted class):")
    for row in ev.confusion.tolist():
        print(" ".join(f"{v:5d}" for v in row))


def image_paths(args: list) -> list:
    """(path as the user wrote it, Path) for each image argument, folders opened into their PNG and JPEG files."""
    from .prepare import image_files

    if not args:
        raise VitTutorialError("no image given: name image files or folders after --checkpoint CKPT")
    found = []
    for arg in args:
        path = Path(arg)
        if path.is_dir():
            found += [(str(path / f.name), f) for f in image_files(path)]
        elif path.is_file():
            found.append((str(arg), path))
        else:
            raise VitTutorialError(f"image not found: {arg}")
    return found


def check_writable(out: str) -> Path:
    """The path of a file to write, refused early if its folder does not exist (before any work is done)."""
    path = Path(out)
    if not path.parent.is_dir():
        raise VitTutorialError(f"cannot write {out}: the folder {path.parent} does not exist")
    if path.is_dir():
        raise VitTutorialError(f"cannot write {out}: it is a folder")
    return path


def prediction_figure(images: torch.Tensor, probs: torch.Tensor, classes: list, names: list):
    """One row per picture: (M, C, H, W) in [0, 1] as the model saw them, beside the (M, K) probabilities."""
    from matplotlib.figure import Figure  # no pyplot: savefig renders with Agg, and no window or global state

    M, K = probs.shape
    fig = Figure(figsize=(7, 0.3 * K * M + 0.4), layout="constrained")
    axes = fig.subplots(M, 2, squeeze=False, width_ratios=[1, 2.2])
    for (ax_img, ax_bar), x, p, name in zip(axes, images, probs, names):
        if x.shape[0] == 1:
            ax_img.imshow(x[0].numpy(), cmap="gray", vmin=0, vmax=1)
        else:
            ax_img.imshow(x.permute(1, 2, 0).numpy())  # (C, H, W) -> (H, W, C)
        ax_img.set_xticks([])
        ax_img.set_yticks([])
        ax_img.set_title(name, fontsize=8)
        best = int(p.argmax())
        ax_bar.barh(range(K), p.tolist(), color=["tab:blue" if k == best else "tab:gray" for k in range(K)])
        ax_bar.set_yticks(range(K), classes, fontsize=8)
        ax_bar.invert_yaxis()  # the first class on top, as a reader scans a list
        ax_bar.set_xlim(0, 1)
        ax_bar.set_xlabel("probability")
        ax_bar.set_title(f"{classes[best]} ({100 * float(p[best]):.1f} %)", fontsize=9)
    return fig


def cmd_predict(args) -> None:
    from .checkpoint import checkpoint_dataset, model_from_payload, read_checkpoint
    from .evaluation import predict_proba
    from .prepare import prepare_image, read_image

    if args.top < 1:
        raise VitTutorialError(f"--top must be at least 1, not {args.top}")
    paths = image_paths(args.images + args.image)
    show = check_writable(args.show) if args.show else None
    payload = read_checkpoint(args.checkpoint)
    model = model_from_payload(payload, args.checkpoint)
    record = checkpoint_dataset(payload) or {}
    C, S = model.config.in_channels, model.config.image_size
    K = model.config.num_classes
    classes = [str(c) for c in (record.get("classes") or payload.get("classes") or [])]
    if len(classes) != K:
        classes = [str(i) for i in range(K)]
    images = []
    for name, path in paths:
        picture = read_image(path)  # its errors name the file already
        try:
            images.append(prepare_image(picture, record.get("name"), (C, S, S)))
        except VitTutorialError as e:
            raise VitTutorialError(f"{name}: {e}") from None
    images = torch.stack(images)
    probs = predict_proba(model, images, device="cpu")
    for (name, _), p in zip(paths, probs):
        best = int(p.argmax())
        if args.json:
            print(json.dumps({"path": name, "index": best, "class": classes[best],
                              "probabilities": {c: round(float(q), 6) for c, q in zip(classes, p.tolist())}}))
            continue
        top = p.topk(min(args.top, K))
        said = [f"{classes[i]} ({100 * q:.1f} %)" for q, i in zip(top.values.tolist(), top.indices.tolist())]
        print(f"{name}: {said[0]}" + (f"; then {', '.join(said[1:])}" if len(said) > 1 else ""))
    if show is not None:
        fig = prediction_figure(images, probs, classes, [name for name, _ in paths])
        try:
            fig.savefig(show, dpi=100)
        except (OSError, ValueError) as e:  # no permission, a full disk, a suffix matplotlib cannot write
            raise VitTutorialError(f"cannot write {args.show}: {e}") from None


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
    except BrokenPipeError:
        # The reader stopped reading (``predict ... | head``): not worth a traceback. Point stdout at
        # /dev/null so that Python's own flush at exit does not fail a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0
