"""Evaluation: the one loop that runs a model over many images (``batched``), accuracy with its
95 % interval, per-class accuracy, confusion matrix, the mistakes, and a paired test for comparing
two models on the same images."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch

from .data import ImageDataset
from .errors import VitTutorialError
from .utils import default_device, resolve_device


@dataclass
class Evaluation:
    """What a model got right and wrong on one dataset."""

    accuracy: float
    per_class_accuracy: torch.Tensor  # (K,)
    confusion: torch.Tensor  # (K, K): row = true class, column = predicted class
    labels: torch.Tensor  # (M,)
    predictions: torch.Tensor  # (M,)
    probabilities: torch.Tensor  # (M, K)
    classes: list

    @property
    def correct(self) -> int:
        return int((self.predictions == self.labels).sum())

    @property
    def interval(self) -> tuple[float, float]:
        """The 95 % Wilson interval of the accuracy: the range of true accuracies these results are consistent with."""
        return wilson_interval(self.correct, len(self.labels))

    def summary(self, what: str = "accuracy") -> str:
        """E.g. "accuracy 97.40 % (95 % interval 95.6-98.5 %) on 500 images"."""
        return accuracy_summary(self.accuracy, self.interval, len(self.labels), what)

    @property
    def misclassified(self) -> torch.Tensor:
        """Indices of the images the model got wrong, most confident mistakes first."""
        wrong = (self.predictions != self.labels).nonzero().flatten()
        conf = self.probabilities[wrong, self.predictions[wrong]]
        return wrong[conf.argsort(descending=True)]

    def __repr__(self) -> str:
        lo, hi = self.interval
        return f"Evaluation(accuracy={self.accuracy:.4f}, 95% interval=[{lo:.4f}, {hi:.4f}], images={len(self.labels)})"


def accuracy_summary(accuracy: float, interval: tuple[float, float], n: int, what: str = "accuracy", *,
                     short: bool = False) -> str:
    """The book's one way to write an accuracy with its 95 % interval.

    E.g. "accuracy 97.40 % (95 % interval 95.6-98.5 %) on 500 images"; with
    ``short=True``, for a table cell: "97.40 % (95.6-98.5)".
    """
    lo, hi = interval
    if short:
        return f"{100 * accuracy:.2f} % ({100 * lo:.1f}-{100 * hi:.1f})"
    return f"{what} {100 * accuracy:.2f} % (95 % interval {100 * lo:.1f}-{100 * hi:.1f} %) on {n:,} images"


def count_summary(correct: int, n: int, what: str = "accuracy", *, short: bool = False) -> str:
    """``accuracy_summary`` of ``correct`` right answers out of ``n``, with its Wilson interval."""
    return accuracy_summary(correct / n if n else float("nan"), wilson_interval(correct, n), n, what, short=short)


def p_text(p: float) -> str:
    """A p-value as the book writes it: two significant digits ("0.14", "0.0023", "3e-07")."""
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.0e}"


def mcnemar_summary(test: dict, a: str = "A", b: str = "B") -> str:
    """The book's one way to write a McNemar comparison (``mcnemar``'s result) of models ``a`` and ``b``.

    E.g. "12 images right for A only, 5 for B only, exact McNemar p = 0.14".
    """
    return (f"{test['a_only']} images right for {a} only, {test['b_only']} for {b} only, "
            f"exact McNemar p = {p_text(test['p_value'])}")


def paired_difference(correct_a: torch.Tensor, correct_b: torch.Tensor, z: float = 1.959964) -> dict:
    """Accuracy of A minus accuracy of B on the same images, with a 95 % interval for the difference.

    The interval is Newcombe's (1998, method 10) for paired proportions: it
    combines the two Wilson intervals with the correlation of the paired
    answers, so it stays sensible when few images disagree.
    Returns {"difference", "low", "high", "images"} (differences as fractions).
    """
    a, b = torch.as_tensor(correct_a).bool(), torch.as_tensor(correct_b).bool()
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise VitTutorialError(f"need two (M,) vectors over the same images, got {tuple(a.shape)} and {tuple(b.shape)}")
    n = len(a)
    both, a_only, b_only = int((a & b).sum()), int((a & ~b).sum()), int((~a & b).sum())
    neither = n - both - a_only - b_only
    p1, p2 = (both + a_only) / n, (both + b_only) / n
    l1, u1 = wilson_interval(both + a_only, n, z)
    l2, u2 = wilson_interval(both + b_only, n, z)
    cross = both * neither - a_only * b_only
    if cross > 0:
        cross = max(cross - n / 2, 0)
    denominator = (both + a_only) * (b_only + neither) * (both + b_only) * (a_only + neither)
    phi = cross / math.sqrt(denominator) if denominator else 0.0
    delta = math.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    epsilon = math.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    d = p1 - p2
    return {"difference": d, "low": max(-1.0, d - delta), "high": min(1.0, d + epsilon), "images": n}


def difference_summary(diff: dict) -> str:
    """The book's one way to write a paired difference (``paired_difference``'s result), in points.

    E.g. "+0.40 points (95 % interval -0.12 to +0.93)".
    """
    return (f"{100 * diff['difference']:+.2f} points (95 % interval {100 * diff['low']:+.2f} to "
            f"{100 * diff['high']:+.2f})")


def holm(p_values: list) -> list:
    """Holm's step-down adjustment of a family of p-values: reject where the adjusted value is below the level.

    The smallest p is multiplied by the family's size m, the next by m - 1,
    and so on, each adjusted value at least the one before it.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def wilson_interval(correct: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a proportion ``correct / n`` (95 % for the default ``z``).

    Unlike the textbook "p +- 2 standard errors", it stays inside [0, 1] and
    is honest near 100 %, where small test sets put most of our accuracies.
    """
    if n <= 0:
        return (float("nan"), float("nan"))
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def mcnemar(correct_a: torch.Tensor, correct_b: torch.Tensor) -> dict:
    """Exact McNemar test: do two models, scored on the same images, differ in accuracy?

    ``correct_a`` and ``correct_b`` are (M,) booleans, one per image. Only the
    images on which the two disagree carry information: ``a_only`` right for
    A alone, ``b_only`` right for B alone. Under "no difference" each
    disagreement is a fair coin, so the two-sided p-value is a binomial tail.
    """
    a, b = torch.as_tensor(correct_a).bool(), torch.as_tensor(correct_b).bool()
    if a.shape != b.shape or a.ndim != 1:
        raise VitTutorialError(f"need two (M,) vectors over the same images, got {tuple(a.shape)} and {tuple(b.shape)}")
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    n, k = a_only + b_only, min(a_only, b_only)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n if n else 1.0
    return {"a_only": a_only, "b_only": b_only, "p_value": min(1.0, 2 * tail)}


@torch.no_grad()
def batched(model: torch.nn.Module, data: ImageDataset | torch.Tensor, fn=None, batch_size: int = 1024,
            device: str | torch.device | None = None, autocast_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Run ``fn(model, x)`` over ``data`` batch by batch, in eval mode and without gradients.

    ``data`` is an ``ImageDataset`` or images (M, C, H, W) in [0, 1]; ``fn``
    maps a batch (B, C, H, W) to (B, ...) and defaults to the logits (B, K)
    in float32. Returns the outputs (M, ...), joined on the CPU. ``device``
    (default: where the model is) serves this call only: the model goes back
    to its device, and to train or eval mode as it was. With
    ``autocast_dtype`` (e.g. ``torch.bfloat16``) the batches run under autocast.
    """
    fn = fn or (lambda model, x: model(x).float())
    home = next(model.parameters()).device
    device = resolve_device(device) if device is not None else home
    was_training = model.training
    model.to(device).eval()
    out = []
    try:
        # no images: one empty batch, so that the result still has its shape (0, ...)
        for start in range(0, len(data), batch_size) or range(1):
            if isinstance(data, ImageDataset):
                x, _ = data.batch(torch.arange(start, min(start + batch_size, len(data))))
            else:
                x = data[start:start + batch_size]
            autocast = torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype else contextlib.nullcontext()
            with autocast:
                out.append(fn(model, x.to(device)).cpu())
    finally:
        model.to(home).train(was_training)
    return torch.cat(out)


def probabilities(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Images (B, C, H, W) -> class probabilities (B, K) in float32."""
    return model(x).float().softmax(-1)


def predict_proba(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 1024,
                  device: str | torch.device | None = None) -> torch.Tensor:
    """Class probabilities (M, K) for images (M, C, H, W) in [0, 1], on the CPU.

    ``device`` defaults to where the model is (see ``batched``).
    """
    return batched(model, images, probabilities, batch_size, device)


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, K) counts: entry [i, j] is how many images of class i were predicted as j."""
    idx = labels.long() * num_classes + predictions.long()
    return torch.bincount(idx, minlength=num_classes**2).view(num_classes, num_classes)


def evaluate(model: torch.nn.Module, data: ImageDataset, batch_size: int = 1024,
             device: str | torch.device | None = None) -> Evaluation:
    """Run ``model`` over every image of ``data`` and collect the results.

    ``device`` (default: a GPU if there is one) is used for this call only:
    the model goes back to where it was.
    """
    device = device if device is not None else default_device()  # batched checks that it can run here
    K = model.config.num_classes
    probs = batched(model, data, probabilities, batch_size, device)  # (M, K)
    preds = probs.argmax(1)
    labels = data.labels
    cm = confusion_matrix(labels, preds, K)
    per_class = cm.diag().float() / cm.sum(1).clamp(min=1).float()
    acc = (preds == labels).float().mean().item() if len(labels) else float("nan")
    return Evaluation(acc, per_class, cm, labels, preds, probs, list(data.classes))
