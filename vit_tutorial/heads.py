"""Other classification heads: classical classifiers fitted on a trained ViT's frozen features.

The ViT's own head is one linear layer on the pooled token (the class token,
or the mean of the patch tokens). Nothing forces that choice: once the
encoder is trained, its features can feed any classifier. ``extract_features``
returns exactly what the linear head reads; ``compare_heads`` fits
scikit-learn classifiers on them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from .data import ImageDataset
from .errors import VitTutorialError
from .evaluation import batched
from .utils import default_device


def pooled_features(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Images (B, C, H, W) -> the pooled token (B, D) the model's head reads, in float32."""
    return model.pool(model.forward_features(x)).float()


def extract_features(model: torch.nn.Module, data: ImageDataset, batch_size: int = 512,
                     device: str | torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The pooled features (M, D) the model's head reads, and the labels (M,), on the CPU.

    ``model.head(features)`` gives the model's logits for those images.
    ``device`` (default: a GPU if there is one) serves this call only.
    """
    device = device if device is not None else default_device()  # batched checks that it can run here
    return batched(model, data, pooled_features, batch_size, device), data.labels.clone()


def make_head(name: str, seed: int = 0, n_jobs: int | None = None):
    """A scikit-learn classifier by name: see ``HEADS``."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer, StandardScaler

    # as many worker threads as torch uses: more than the cores would slow everything down
    n_jobs = n_jobs or torch.get_num_threads()
    if name == "logistic regression":  # a linear head again, fitted to convergence instead of by SGD
        return make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    if name == "random forest":  # axis-aligned splits, no notion of distance at all
        return RandomForestClassifier(n_estimators=100, min_samples_leaf=2, n_jobs=n_jobs, random_state=seed)
    if name == "k-nearest neighbours":  # vote of the 10 training images at the smallest angle
        return make_pipeline(Normalizer(), KNeighborsClassifier(n_neighbors=10, n_jobs=n_jobs))
    raise VitTutorialError(f"unknown head {name!r}; choose one of {', '.join(HEADS)}")


HEADS = ("logistic regression", "random forest", "k-nearest neighbours")


@dataclass
class HeadResult:
    name: str
    accuracy: float  # on the evaluation features
    fit_seconds: float
    predict_seconds: float
    predictions: torch.Tensor


def compare_heads(train_features: torch.Tensor, train_labels: torch.Tensor, eval_features: torch.Tensor,
                  eval_labels: torch.Tensor, names=HEADS, seed: int = 0) -> list[HeadResult]:
    """Fit each head on the training features and score it on the evaluation features."""
    if train_features.ndim != 2 or eval_features.ndim != 2 or train_features.shape[1] != eval_features.shape[1]:
        raise VitTutorialError(f"features must be (M, D) with the same D, got {tuple(train_features.shape)} "
                               f"and {tuple(eval_features.shape)}")
    if len(train_features) != len(train_labels) or len(eval_features) != len(eval_labels):
        raise VitTutorialError("features and labels must have the same length")
    Xtr, ytr = train_features.double().numpy(), train_labels.numpy()
    Xev, yev = eval_features.double().numpy(), eval_labels.numpy()
    results = []
    for name in names:
        head = make_head(name, seed)
        t0 = time.perf_counter()
        head.fit(Xtr, ytr)
        t1 = time.perf_counter()
        pred = head.predict(Xev)
        t2 = time.perf_counter()
        results.append(HeadResult(name, float((pred == yev).mean()), t1 - t0, t2 - t1, torch.as_tensor(pred)))
    return results
