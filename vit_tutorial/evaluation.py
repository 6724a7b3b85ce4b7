"""Evaluation: accuracy, per-class accuracy, confusion matrix, the mistakes."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .data import ImageDataset
from .utils import default_device


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
    def misclassified(self) -> torch.Tensor:
        """Indices of the images the model got wrong, most confident mistakes first."""
        wrong = (self.predictions != self.labels).nonzero().flatten()
        conf = self.probabilities[wrong, self.predictions[wrong]]
        return wrong[conf.argsort(descending=True)]

    def __repr__(self) -> str:
        return f"Evaluation(accuracy={self.accuracy:.4f}, images={len(self.labels)})"


@torch.no_grad()
def predict_proba(model: torch.nn.Module, images: torch.Tensor, batch_size: int = 1024,
                  device: str | torch.device | None = None) -> torch.Tensor:
    """Class probabilities (M, K) for images (M, C, H, W) in [0, 1]."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device)
        out.append(model(x).float().softmax(-1).cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, model.config.num_classes)


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, K) counts: entry [i, j] is how many images of class i were predicted as j."""
    idx = labels.long() * num_classes + predictions.long()
    return torch.bincount(idx, minlength=num_classes**2).view(num_classes, num_classes)


def evaluate(model: torch.nn.Module, data: ImageDataset, batch_size: int = 1024,
             device: str | torch.device | None = None) -> Evaluation:
    """Run ``model`` over every image of ``data`` and collect the results."""
    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    K = model.config.num_classes
    probs = torch.cat([
        predict_proba(model, data.batch(torch.arange(s, min(s + batch_size, len(data))))[0], batch_size, device)
        for s in range(0, len(data), batch_size)
    ]) if len(data) else torch.empty(0, K)
    preds = probs.argmax(1)
    labels = data.labels
    cm = confusion_matrix(labels, preds, K)
    per_class = cm.diag().float() / cm.sum(1).clamp(min=1).float()
    acc = (preds == labels).float().mean().item() if len(labels) else float("nan")
    return Evaluation(acc, per_class, cm, labels, preds, probs, list(data.classes))
