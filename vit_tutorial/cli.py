"""The command line: ``python -m vit_tutorial models | train | evaluate | compare | predict | report``."""

from __future__ import annotations

import argparse
import ast
import json
import os
import shlex
import sys
import time
from pathlib import Path

import torch

from .errors import VitTutorialError

EXIT_ERROR = 2
PROG = "python -m vit_tutorial"


def _add_data_args(p):
    p.add_argument("--data-root", default="data", help="folder for the datasets (default: data)")
    p.add_argument("--offline", action="store_true", help="never try to download")


def _model_arg(p, required_with: str):
    p.add_argument("--model", metavar="ID",
                   help=f"a model of the registry, e.g. mnist-sample/vit ({PROG} models lists them){required_with}")


def build_parser() -> argparse.ArgumentParser:
    from .data import DATASETS
    from .training import DISTILL_KINDS

    parser = argparse.ArgumentParser(prog=PROG, description="Train, evaluate, compare and use the book's models.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    m = sub.add_parser("models", help="list every model: id, parameters, recipe, shipped or not, test accuracy",
                       description="Every model of the registry, with its test accuracy where it ships.")
    m.add_argument("--dataset", metavar="DATASET", help=f"only the models of this dataset: {', '.join(DATASETS)}")
    m.add_argument("--json", action="store_true", help="one JSON object per model instead of a table")

    t = sub.add_parser("train", help="train a model and write its checkpoint, row and figures",
                       description="Train a model of the registry with its recipe (or with --set changes) and "
                       "write OUT/checkpoint.pt, OUT/row.json (its result row), OUT/history.json and figures. "
                       "The test split is read only with --read-test.")
    _model_arg(t, "; default: the --dataset's own model")
    t.add_argument("--dataset", metavar="DATASET",
                   help=f"one of {', '.join(DATASETS)}: train this dataset's own model (mnist: the full "
                   "MNIST; offline, its 5,000-digit sample mnist-sample stands in, and says so)")
    t.add_argument("--out", required=True, help="folder for checkpoint.pt, row.json, history.json and the figures")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="change a field of the model's configuration (e.g. depth=6, pool=mean) or of its recipe "
                   "(e.g. epochs=40, lr=1e-3, augment=shift); repeatable")
    t.add_argument("--epochs", type=int, help="epochs (default: the model's recipe)")
    t.add_argument("--batch-size", type=int, help="images per step (default: the recipe's)")
    t.add_argument("--lr", type=float, help="peak learning rate (default: the recipe's)")
    t.add_argument("--augment", help="augmentation (default: the recipe's): digits, clothes, photos, shift, rotate, "
                   "zoom, mirror or none")
    t.add_argument("--teacher", metavar="CHECKPOINT_OR_ID",
                   help="distil from this trained classifier of the same images: a checkpoint, or a model id "
                   "(its shipped checkpoint); default: the recipe's teacher, if any")
    t.add_argument("--distill", choices=DISTILL_KINDS,
                   help="with a teacher: learn its top class (hard) or its probabilities (soft); default: the "
                   "recipe's, else hard")
    t.add_argument("--distill-weight", type=float, help="with a teacher: the share of its term (default 0.5)")
    t.add_argument("--distill-temperature", type=float, help="with soft distillation: the temperature (default 2)")
    t.add_argument("--train-size", type=int, metavar="N",
                   help="train on a class-balanced subset of N training images (drawn with --seed)")
    t.add_argument("--seed", type=int, default=0, help="draws the initial weights, the order and the augmentation "
                   "(default 0)")
    t.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    t.add_argument("--threads", type=int, help="compute threads (default: one per core)")
    t.add_argument("--quick", action="store_true", help="a short run: 2 epochs on 1,000 images, as in CI")
    t.add_argument("--read-test", action="store_true",
                   help="also score the test split, once, at the end (otherwise it is not read)")
    t.add_argument("--resume", action="store_true", help="continue (or, when finished, only score) the run in --out")
    t.add_argument("--overwrite", action="store_true",
                   help="train anew even where --out already holds a checkpoint (it is replaced after epoch 1)")
    t.add_argument("--json", type=Path, metavar="FILE", help="also write the result row to FILE")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--preset", help=argparse.SUPPRESS)  # retired: refused with the name of its successor
    _add_data_args(t)

    e = sub.add_parser("evaluate", help="accuracy and confusion matrix of a checkpoint")
    e.add_argument("--checkpoint", help="a checkpoint file (or use --model for a shipped one)")
    _model_arg(e, "; its shipped checkpoint")
    e.add_argument("--dataset", metavar="DATASET",
                   help=f"one of {', '.join(DATASETS)}: the data to evaluate on (default: the checkpoint's "
                   "own); another kind of images is refused")
    e.add_argument("--split", default="val", choices=["train", "val", "test"],
                   help="which split (default: val; report test once, at the end)")
    e.add_argument("--device", help="cpu or cuda (default: cuda if available)")
    _add_data_args(e)

    c = sub.add_parser("compare", help="two or more models on the same images: accuracies and McNemar's test",
                       description="Score each model on the same split and compare every pair on the images where "
                       "they disagree (exact McNemar test), with the difference and its 95 % interval. A model is "
                       "a checkpoint, a row file, or an id (its shipped checkpoint, else its shipped row: test "
                       "split only).")
    c.add_argument("models", nargs="+", metavar="MODEL", help="checkpoint (.pt), row (.json) or model id")
    c.add_argument("--split", default="test", choices=["val", "test"], help="which split (default: test)")
    c.add_argument("--json", type=Path, metavar="FILE", help="also write the results to FILE")
    _add_data_args(c)

    p = sub.add_parser("predict", help="classify pictures: any size, PNG or JPEG, dark ink on light or light on dark",
                       description="Classify pictures with a trained model. Each picture is first made to look like "
                       "the model's training data (for digits: grey, light ink on black, 20 pixels tall, centred "
                       "by its centre of mass in 28x28; see vit_tutorial/prepare.py).")
    p.add_argument("--checkpoint", help="a checkpoint file (or use --model for a shipped one)")
    _model_arg(p, "; its shipped checkpoint")
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

    r = sub.add_parser("report", help="render every results table from the rows (README, website)",
                       description="Render the tables of README.md and of the website's pages from the result rows "
                       "in results/, between their markers.")
    r.add_argument("--check", action="store_true", help="change nothing; fail if a table is not what the rows give")
    return parser


# --------------------------------------------------------------------------- models


def cmd_models(args) -> None:
    from .data import DATASETS
    from .report import model_table, models_text

    if args.dataset is not None and args.dataset not in DATASETS:
        raise VitTutorialError(f"unknown dataset {args.dataset!r}; choose one of {', '.join(DATASETS)}")
    lines = model_table(args.dataset)
    if args.json:
        for line in lines:
            print(json.dumps(line))
    else:
        print(models_text(lines))


# --------------------------------------------------------------------------- train


def parse_changes(pairs: list) -> dict:
    """``["depth=6", "lr=1e-3"]`` -> ``{"depth": 6, "lr": 0.001}``: numbers, tuples and booleans parsed, text kept."""
    out = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise VitTutorialError(f"--set needs KEY=VALUE, not {pair!r}")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        out[key.strip()] = value
    return out


def train_model_id(args, splits_note: list) -> tuple:
    """The model id ``train`` trains, and the splits when they had to be loaded to choose it."""
    from . import registry

    if args.preset is not None:
        if args.preset == "tiny":
            raise VitTutorialError("--preset is retired; 'tiny' is a size, not a model: use --model ID with "
                                   "--set embed_dim=32 --set depth=2 --set num_heads=2")
        successor = registry.RETIRED.get(args.preset)
        raise VitTutorialError(f"--preset is retired: use --model {successor or 'ID'}"
                               + ("" if successor else f" ({PROG} models lists them)"))
    if args.model is not None:
        spec = registry.get(args.model)
        if args.dataset is not None and args.dataset != spec.dataset:
            raise VitTutorialError(f"{args.model} trains on {spec.dataset}, not --dataset {args.dataset}")
        return args.model, None
    dataset = args.dataset or "mnist"
    if dataset != "mnist":
        return registry.default_model(dataset), None
    from .data import load_dataset

    splits = load_dataset("mnist", args.data_root, download=not args.offline, verbose=False)
    if splits.dataset == "mnist-sample":
        splits_note.append(f"Note: the full MNIST could not be loaded, so its offline sample stands in: training "
                           f"{registry.default_model('mnist-sample')} (the sample's own model and recipe)")
    return registry.default_model(splits.dataset), splits


def cmd_train(args, argv) -> None:
    from .checkpoint import check_dataset, check_run_folder, model_from_payload, read_checkpoint
    from .evaluation import count_summary, evaluate
    from .plots import plot_accuracy, plot_confusion
    from .results import write_row
    from .runner import QUICK_EVAL_SIZE, RunSpec, load_splits, train
    from .training import amp_name, check_recipe, choose_amp
    from .utils import resolve_device, shown_path

    start = time.perf_counter()
    if args.threads is not None:
        if args.threads < 1:
            raise VitTutorialError(f"--threads must be at least 1, not {args.threads}")
        torch.set_num_threads(args.threads)
    changes = parse_changes(args.set)
    flags = dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, augment=args.augment,
                 distill=args.distill, distill_weight=args.distill_weight,
                 distill_temperature=args.distill_temperature)
    changes.update({k: v for k, v in flags.items() if v is not None})
    check_recipe(changes)  # --epochs 0 and the like fail before any data is read or any file written
    device = resolve_device(args.device)  # likewise --device cuda without a GPU
    check_run_folder(args.out, args.resume, args.overwrite)  # a finished model is not trained over by accident
    if args.json is not None and not args.json.parent.is_dir():
        raise VitTutorialError(f"cannot write {args.json}: the folder {args.json.parent} does not exist")
    notes: list = []
    model_id, splits = train_model_id(args, notes)
    teacher = None
    if args.teacher is not None:
        from . import registry

        if args.teacher.endswith(".pt"):
            payload = read_checkpoint(args.teacher)
            check_dataset(payload, registry.get(model_id).dataset, args.teacher)
            teacher = model_from_payload(payload, args.teacher)
            changes["teacher"] = str(args.teacher)
        else:
            registry.get(args.teacher)
            changes["teacher"] = args.teacher
    spec = RunSpec(model_id, changes, train_size=args.train_size, seed=args.seed, quick=args.quick,
                   read_test=args.read_test)  # an unknown setting fails here, before any data is read
    for note in notes:
        print(note)
    if splits is None:
        splits = load_splits(spec.dataset, args.data_root)
    kwargs = spec.recipe()
    if "teacher" in kwargs:
        print(f"Teacher: {kwargs['teacher']} ({kwargs.get('distill', 'hard')} distillation)")
    out = Path(args.out)
    print(f"Training {model_id} on {args.train_size or 'the'} training images of {splits.source}; "
          f"{kwargs['epochs']} epochs; writing to {shown_path(out)}")
    command = " ".join([PROG, *(shlex.quote(a) for a in argv)])
    result = train(spec, splits=splits, data_root=args.data_root, out_dir=out, resume=args.resume, device=device,
                   progress=not args.no_progress, verbose=True, teacher=teacher, command=command)
    row, model, history = result.row, result.model, result.history
    write_row(out / "row.json", row)
    if args.json is not None:
        write_row(args.json, row)
    plot_accuracy(history, title=f"{model_id}: accuracy per epoch").savefig(out / "accuracy.png", dpi=120)
    train_set = splits.train if args.train_size is None and not args.quick else None
    val_set = splits.val.sample(QUICK_EVAL_SIZE, 0) if args.quick else splits.val  # the images the row scored
    for split, data in (("train", train_set), ("val", val_set)):
        if data is None:
            continue
        ev = evaluate(model, data, device=device)
        name = "training" if split == "train" else "validation"
        plot_confusion(ev, title=f"{model_id}, {name} set: accuracy {ev.accuracy:.2%}").savefig(
            out / f"cm_{split}.png", dpi=120)
    print(count_summary(row["val"]["correct"], row["val"]["images"], "validation accuracy"))
    if row["test"] is not None:
        print(count_summary(row["test"]["correct"], row["test"]["images"], "test accuracy"))
    print(f"{row['parameters']:,} parameters; {row['epochs']} epochs, {row['images_seen']:,} images seen")
    print(f"Wrote {shown_path(out / 'checkpoint.pt')}, row.json, history.json, accuracy.png and the confusion "
          f"matrices")
    print(f"Wall time: {time.perf_counter() - start:.0f} s, of which {row['wall_seconds']:.0f} s in fit "
          f"({amp_name(choose_amp(model, device))}, {torch.get_num_threads()} threads)")


# --------------------------------------------------------------------------- evaluate, predict


def checkpoint_of(args) -> str:
    """The checkpoint ``--checkpoint`` or ``--model`` (its shipped checkpoint) names."""
    if (args.checkpoint is None) == (args.model is None):
        raise VitTutorialError("name a checkpoint with --checkpoint FILE or a shipped model with --model ID")
    if args.checkpoint is not None:
        return args.checkpoint
    from .runner import checkpoint_path
    from .utils import shown_path

    path = checkpoint_path(args.model)
    if not path.is_file():
        raise VitTutorialError(f"{args.model} does not ship as a checkpoint ({shown_path(path)}); train it with "
                               f"{PROG} train --model {args.model} --out runs/{args.model}")
    return str(path)


def load_for(payload: dict, dataset: str | None, root, offline: bool, path):
    """The splits of ``dataset`` (default: the checkpoint's own), checked against the checkpoint's images."""
    from .checkpoint import check_dataset, checkpoint_dataset
    from .data import load_dataset

    if dataset is None:
        dataset = (checkpoint_dataset(payload) or {}).get("name", "mnist")
    check_dataset(payload, dataset, path)  # before loading any data: a model for digits on clothes
    return load_dataset(dataset, root, download=not offline)


def cmd_evaluate(args) -> None:
    from .checkpoint import model_from_payload, read_checkpoint
    from .evaluation import evaluate
    from .utils import resolve_device

    device = resolve_device(args.device)
    path = checkpoint_of(args)
    payload = read_checkpoint(path)
    model = model_from_payload(payload, path)
    splits = load_for(payload, args.dataset, args.data_root, args.offline, path)
    data = getattr(splits, args.split)
    if tuple(data.image_shape) != (model.config.in_channels, model.config.image_size, model.config.image_size):
        raise VitTutorialError(f"{splits.dataset} images are {tuple(data.image_shape)}; the checkpoint's model "
                               f"takes {(model.config.in_channels, model.config.image_size, model.config.image_size)}")
    ev = evaluate(model, data, device=device)
    print(f"{ev.summary(args.split + ' accuracy')} of {splits.source}")
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
    checkpoint = checkpoint_of(args)
    payload = read_checkpoint(checkpoint)
    model = model_from_payload(payload, checkpoint)
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


# --------------------------------------------------------------------------- compare


def compared_model(arg: str, split: str, dataset: str | None):
    """(label, dataset, what): ``what`` is a model to run, or the (M,) answers of a shipped row (test split)."""
    from . import registry
    from .checkpoint import checkpoint_dataset, model_from_payload, read_checkpoint
    from .results import correct_of, read_row
    from .runner import RunSpec, cached, checkpoint_path

    if arg.endswith(".json"):
        row = read_row(arg)
        part = row[split] if not row["data"].get("cv") else None
        if part is None:
            raise VitTutorialError(f"{arg} holds no {split} results")
        return arg, row["data"]["dataset"], correct_of(part)
    if arg.endswith(".pt"):
        payload = read_checkpoint(arg)
        return arg, (checkpoint_dataset(payload) or {}).get("name") or dataset, model_from_payload(payload, arg)
    spec = registry.get(arg)
    path = checkpoint_path(arg)
    if path.is_file():
        payload = read_checkpoint(path)
        return arg, spec.dataset, model_from_payload(payload, path)
    row = cached(RunSpec(arg, read_test=True))
    if row is None or row[split] is None:
        raise VitTutorialError(f"{arg} ships neither a checkpoint nor a row with {split} results")
    return arg, spec.dataset, correct_of(row[split])


def cmd_compare(args) -> None:
    import itertools

    from .data import load_dataset, same_images
    from .evaluation import count_summary, difference_summary, evaluate, mcnemar, mcnemar_summary, paired_difference

    if len(args.models) < 2:
        raise VitTutorialError("compare needs at least two models")
    if len(set(args.models)) < len(args.models):
        raise VitTutorialError("a model is named twice")
    models = [compared_model(a, args.split, None) for a in args.models]  # every file checked before any data
    datasets = [d for _, d, _ in models if d]
    if not datasets:
        raise VitTutorialError("cannot tell which data these models were trained on")
    for label, d, _ in models:
        if d and not same_images(d, datasets[0]):
            raise VitTutorialError(f"{label} was trained on {d}, {models[0][0]} on {datasets[0]}: "
                                   f"compare models of one dataset")
    dataset = next((d for d in datasets if d == "mnist-sample"), datasets[0])
    splits = load_dataset(dataset, args.data_root, download=not args.offline, verbose=False)
    data = getattr(splits, args.split)
    print(f"{args.split} split: {len(data):,} images of {splits.source}")
    width = max(len(label) for label, _, _ in models)
    correct, results = {}, []
    for label, _, what in models:
        if isinstance(what, torch.Tensor):
            if len(what) != len(data):
                raise VitTutorialError(f"{label} holds answers for {len(what):,} images, not the {len(data):,} "
                                       f"of this {args.split} split")
            correct[label], how = what, " (shipped row)"
        else:
            ev = evaluate(what, data, device="cpu")
            correct[label], how = ev.predictions == ev.labels, ""
        k = int(correct[label].sum())
        results.append({"model": label, "correct": k, "images": len(data)})
        print(f"{label:{width}s} {count_summary(k, len(data))}{how}")
    pairs = []
    for a, b in itertools.combinations(correct, 2):
        t, d = mcnemar(correct[a], correct[b]), paired_difference(correct[a], correct[b])
        pairs.append({"a": a, "b": b, **t, **d})
        print(f"{a} - {b}: {difference_summary(d)}; {mcnemar_summary(t, a, b)}")
    if len(pairs) > 1:
        print(f"({len(pairs)} comparisons: correct for multiple testing, e.g. Holm's method, "
              f"vit_tutorial.evaluation.holm)")
    if args.json:
        args.json.write_text(json.dumps({"split": args.split, "dataset": splits.dataset, "results": results,
                                         "pairs": pairs}, indent=1))


# --------------------------------------------------------------------------- report


def cmd_report(args) -> None:
    from .report import check, write

    if args.check:
        stale = check()
        if stale:
            raise VitTutorialError("stale tables in " + ", ".join(stale) + f": run {PROG} report")
        print("every table matches the rows")
    else:
        for path in write():
            print(f"wrote {path}")


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if getattr(args, "offline", False):
        os.environ["VIT_TUTORIAL_OFFLINE"] = "1"
    commands = {"models": cmd_models, "train": lambda a: cmd_train(a, argv), "evaluate": cmd_evaluate,
                "compare": cmd_compare, "predict": cmd_predict, "report": cmd_report}
    try:
        commands[args.command](args)
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
