"""Training: one ``fit`` for the notebooks, the command line and the tests."""

from __future__ import annotations

import copy
import math
import numbers
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .augment import Augment, get_augment
from .checkpoint import dataset_record, resume_run, save_run, start_run  # noqa: F401 (dataset_record re-exported)
from .data import ImageDataset
from .errors import VitTutorialError
from .evaluation import batched
from .machine import cpu_bf16_support
from .utils import resolve_device


@dataclass
class History:
    """Loss and accuracy per epoch, for the training and validation sets."""

    epoch: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    seconds: list = field(default_factory=list)  # wall time of the training part of each epoch
    images_per_second: list = field(default_factory=list)

    def append(self, **row) -> None:
        for k, v in row.items():
            getattr(self, k).append(v)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> History:
        return cls(**{k: list(v) for k, v in d.items()})

    def __len__(self) -> int:
        return len(self.epoch)


# On an AMX CPU, bfloat16 measured no faster than float32 below this width; on CPUs with AVX-512 BF16 and no
# AMX it was faster at every width the speed benchmark measures (docs/speed.md), so the threshold is for AMX only.
AMX_MIN_WIDTH = 128


def choose_amp(model: torch.nn.Module, device: torch.device, amp: str | bool = "auto") -> torch.dtype | None:
    """The autocast dtype for training, or None for plain float32.

    "auto": bfloat16 on CUDA GPUs that have it; on a CPU, bfloat16 where the CPU
    computes it natively (AVX-512 BF16 or AMX; on AMX only for models of width
    ``AMX_MIN_WIDTH`` and more), float32 elsewhere.
    """
    if amp in (False, "off", "fp32", None):
        return None
    if amp in (True, "bf16"):
        return torch.bfloat16
    if amp != "auto":
        raise VitTutorialError(f"amp must be 'auto', 'bf16' or 'off', not {amp!r}")
    if device.type == "cuda":
        # float16 would need a gradient scaler; older GPUs without bfloat16 train in float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu":
        support = cpu_bf16_support()
        width = getattr(model.config, "embed_dim", None)
        if support == "avx512_bf16" or (support == "amx" and (width is None or width >= AMX_MIN_WIDTH)):
            return torch.bfloat16
    return None


def amp_name(dtype: torch.dtype | None) -> str:
    """How ``fit`` records and prints a precision: "bfloat16", or "fp32" for plain float32."""
    return str(dtype).replace("torch.", "") if dtype else "fp32"


def param_groups(model: torch.nn.Module, weight_decay: float) -> list:
    """Weight decay on weight matrices only: not on biases, norms, the class token or positions."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or name in ("cls_token", "pos_embed") else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_factor: float = 0.01) -> float:
    """Learning-rate factor: linear warm-up from 0, then a cosine down to ``min_factor``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def warmup_cosine_schedule(optimizer: torch.optim.Optimizer, steps_per_epoch: int, epochs: int,
                           warmup_epochs: float = 1.0) -> torch.optim.lr_scheduler.LambdaLR:
    """``warmup_cosine`` as a scheduler stepped after every batch: ``warmup_epochs`` of warm-up, then the cosine
    down to the end of ``epochs``."""
    total_steps = epochs * steps_per_epoch
    warmup_steps = max(1, int(round(warmup_epochs * steps_per_epoch)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, warmup_steps, total_steps))


def make_optimizer(model: torch.nn.Module, lr: float = 1e-3, weight_decay: float = 0.05) -> torch.optim.AdamW:
    """AdamW with weight decay on the weight matrices only (see ``param_groups``)."""
    return torch.optim.AdamW(param_groups(model, weight_decay), lr=lr, betas=(0.9, 0.999))


DISTILL_KINDS = ("hard", "soft")


def distillation_loss(logits: torch.Tensor, y: torch.Tensor, teacher_logits: torch.Tensor, *, kind: str = "hard",
                      weight: float = 0.5, temperature: float = 2.0, label_smoothing: float = 0.0) -> torch.Tensor:
    """Loss of a student that learns from the labels ``y`` and from a teacher's logits (Touvron et al. 2021, DeiT).

    ``kind="hard"``: the teacher's top class counts as a second label,
    ``(1 - weight) * CE(logits, y) + weight * CE(logits, teacher's argmax)``.
    ``kind="soft"`` (Hinton et al. 2015): the second term is the KL divergence
    between the teacher's and the student's distributions at ``temperature``,
    times ``temperature**2`` so that its gradients keep their scale.
    """
    logits, teacher_logits = logits.float(), teacher_logits.float()
    own = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    if kind == "hard":
        taught = F.cross_entropy(logits, teacher_logits.argmax(1), label_smoothing=label_smoothing)
    elif kind == "soft":
        taught = F.kl_div(F.log_softmax(logits / temperature, 1), F.log_softmax(teacher_logits / temperature, 1),
                          reduction="batchmean", log_target=True) * temperature**2
    else:
        raise VitTutorialError(f"distillation must be one of {', '.join(DISTILL_KINDS)}, not {kind!r}")
    return (1 - weight) * own + weight * taught


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, *,
               autocast_dtype: torch.dtype | None = None, label_smoothing: float = 0.0,
               grad_clip: float | None = None, scheduler=None, teacher: torch.nn.Module | None = None,
               distill: dict | None = None):
    """One step of training on a batch: forward, loss, backward, optimizer step (and scheduler step).

    Images ``x`` (B, C, H, W) in [0, 1], labels ``y`` (B,); returns the loss
    (a scalar) and the logits (B, K). This is the body of ``train_epoch``'s
    loop, and what benchmarks/throughput.py times. With a ``teacher`` (a
    trained classifier in eval mode), the loss is ``distillation_loss`` with
    the keyword arguments ``distill``.
    """
    with torch.autocast(x.device.type, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None):
        logits = model(x)
        if teacher is None:
            loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
        else:
            with torch.no_grad():
                teacher_logits = teacher(x)
            loss = distillation_loss(logits, y, teacher_logits, label_smoothing=label_smoothing, **(distill or {}))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return loss, logits


def expected_image_shape(model: torch.nn.Module) -> tuple:
    """(C, H, W) of the images ``model`` takes, from its config."""
    cfg = model.config
    return (cfg.in_channels, cfg.image_size, cfg.image_size)


class WeightAverage:
    """An exponential moving average of a model's weights (Polyak averaging; the "model EMA" of DeiT).

    ``update(model)`` after each optimizer step moves every weight and
    normalisation statistic of ``self.model``, a copy of the model, a fraction
    ``1 - d`` of the way to the model's, with ``d = min(decay, (1 + t) / (10 + t))``
    at step ``t``: the short early horizon keeps the average from remembering
    the random starting weights. With ``decay=0.999`` the average spans about
    the last thousand steps.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0 < decay < 1:
            raise VitTutorialError(f"the weight average's decay must be between 0 and 1, not {decay!r}")
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.steps = 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for mine, theirs in zip(self.model.state_dict().values(), model.state_dict().values(), strict=True):
            if mine.is_floating_point():
                mine.lerp_(theirs, 1 - d)
            else:  # counters such as BatchNorm's num_batches_tracked
                mine.copy_(theirs)


def train_epoch(model: torch.nn.Module, data: ImageDataset, optimizer: torch.optim.Optimizer, scheduler,
                generator: torch.Generator, augment: Augment, *, batch_size: int, device: torch.device,
                autocast_dtype: torch.dtype | None = None, label_smoothing: float = 0.0,
                grad_clip: float | None = None, bar=None, label: str = "", teacher: torch.nn.Module | None = None,
                distill: dict | None = None, average: WeightAverage | None = None) -> dict:
    """One pass over ``data`` in an order drawn from ``generator``: augment each batch, then ``train_step``
    (and, with a ``WeightAverage``, its ``update``).

    Returns the epoch's row of the history: train_loss, train_acc, lr (at
    the end of the epoch), seconds and images_per_second. ``bar`` (a tqdm
    bar, or None) advances once per batch and shows ``label``.
    """
    model.train()
    t0 = time.perf_counter()
    perm = torch.randperm(len(data), generator=generator)
    loss_sum, correct, seen = 0.0, 0, 0
    for idx in perm.split(batch_size):
        x, y = data.batch(idx)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        x = augment(x, generator)
        loss, logits = train_step(model, optimizer, x, y, autocast_dtype=autocast_dtype,
                                  label_smoothing=label_smoothing, grad_clip=grad_clip, scheduler=scheduler,
                                  teacher=teacher, distill=distill)
        if average is not None:
            average.update(model)
        loss_sum += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(epoch=label, loss=f"{loss_sum / seen:.3f}", refresh=False)
    seconds = time.perf_counter() - t0
    return dict(train_loss=loss_sum / seen, train_acc=correct / seen, lr=optimizer.param_groups[0]["lr"],
                seconds=seconds, images_per_second=seen / seconds)


def validate(model: torch.nn.Module, data: ImageDataset | None, device: torch.device,
             autocast_dtype: torch.dtype | None = None, batch_size: int = 1024) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` on ``data``, under ``autocast_dtype``; (nan, nan) without data."""
    if data is None or not len(data):
        return float("nan"), float("nan")
    logits = batched(model, data, batch_size=batch_size, device=device, autocast_dtype=autocast_dtype)  # (M, K)
    loss = F.cross_entropy(logits, data.labels, reduction="sum").item()
    return loss / len(data), (logits.argmax(1) == data.labels).sum().item() / len(data)


def epoch_line(epoch: int, epochs: int, row: dict) -> str:
    """The line ``fit`` prints after each epoch."""
    return (f"epoch {epoch:3d}/{epochs}  train loss {row['train_loss']:.4f} acc {row['train_acc']:.2%}  "
            f"val loss {row['val_loss']:.4f} acc {row['val_acc']:.2%}  "
            f"({row['seconds']:.1f} s, {row['images_per_second']:.0f} img/s)")


def _count(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


# What each checked setting of a recipe must be: (test, words for the error).
RECIPE_RULES = dict(epochs=(_count, "a positive integer"), batch_size=(_count, "a positive integer"),
                    lr=(lambda v: _real(v) and v > 0, "positive"),
                    weight_decay=(lambda v: _real(v) and v >= 0, "at least 0"),
                    warmup_epochs=(lambda v: _real(v) and v >= 0, "at least 0"),
                    label_smoothing=(lambda v: _real(v) and 0 <= v < 1, "in [0, 1)"))


def check_recipe(values: dict) -> None:
    """Refuse, in one line, a recipe that would train nothing or nonsense (0 epochs, a negative rate, ...).

    ``values`` holds some of fit's keyword arguments; the others are not looked at.
    """
    problems = [f"{name} must be {what}, not {values[name]!r}"
                for name, (ok, what) in RECIPE_RULES.items() if name in values and not ok(values[name])]
    if problems:
        raise VitTutorialError("invalid training recipe: " + "; ".join(problems))


def fit(
    model: torch.nn.Module,
    train: ImageDataset,
    val: ImageDataset | None = None,
    *,
    epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    weight_decay: float = 0.05,
    warmup_epochs: float = 1.0,
    label_smoothing: float = 0.1,
    augment: str | Augment | None = "digits",
    augment_strength: float = 1.0,
    grad_clip: float | None = 1.0,
    amp: str | bool = "auto",
    device: str | torch.device | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    resume: bool = False,
    snapshot_epochs=(),
    progress: bool = True,
    verbose: bool = True,
    teacher: torch.nn.Module | None = None,
    distill: str = "hard",
    distill_weight: float = 0.5,
    distill_temperature: float = 2.0,
    ema: float | None = None,
) -> History:
    """Train ``model`` (a ``ViT``, a ``CNN``, any classifier with a ``config``) in place; return its history.

    AdamW (``make_optimizer``) with a linear warm-up then a cosine schedule
    (``warmup_cosine_schedule``), label smoothing, and batched augmentation
    on the training device; each epoch is a ``train_epoch``. The validation
    set is scored after every epoch under the training's autocast (bfloat16
    where training is, for speed), so its numbers can differ in the last
    digits from ``evaluate``'s, which are float32. With ``out_dir`` the run
    is saved after every epoch (``checkpoint.save_run``: ``checkpoint.pt``,
    ``config.json``, ``history.json``); with ``resume=True`` an interrupted
    run picks up after its last finished epoch and ends exactly as an
    uninterrupted one would. The epochs in ``snapshot_epochs`` (0 = before
    training) also keep a copy of the weights under ``out_dir/snapshots/``.

    ``seed`` fixes the order of the images, the augmentation and dropout. The
    starting weights were drawn when the model was built, before ``fit``: for
    a run that repeats, call ``utils.set_seed`` before building the model, as
    the command line and ``runner.train`` do.

    With a ``teacher`` (a trained classifier of the same images, e.g. the
    CNN baseline), the model also learns from the teacher's answers on each
    augmented batch: ``distill`` "hard" or "soft", ``distill_weight`` and
    ``distill_temperature`` go to ``distillation_loss``. The teacher is not
    changed.

    With ``ema`` (a decay such as 0.999) a ``WeightAverage`` of the weights
    is kept through training: the validation after each epoch scores the
    average, the saved checkpoints hold it (and the training weights, for
    resuming), and at the end the model is given the averaged weights.
    """
    device = resolve_device(device)
    check_recipe(dict(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                      warmup_epochs=warmup_epochs, label_smoothing=label_smoothing))
    if len(train) == 0:
        raise VitTutorialError("the training set is empty")
    if tuple(train.image_shape) != expected_image_shape(model):
        raise VitTutorialError(f"the data's images are {tuple(train.image_shape)}, the model expects "
                               f"{expected_image_shape(model)}")
    aug = get_augment(augment, augment_strength)
    distill_args = None
    if isinstance(teacher, str):
        raise VitTutorialError(f"fit needs the teacher model, not its name {teacher!r}: "
                               f"vit_tutorial.runner.teacher_model loads or trains it")
    if teacher is not None:
        if distill not in DISTILL_KINDS:
            raise VitTutorialError(f"distill must be one of {', '.join(DISTILL_KINDS)}, not {distill!r}")
        if not 0 <= distill_weight <= 1 or not distill_temperature > 0:
            raise VitTutorialError("distill_weight must be in [0, 1] and distill_temperature positive")
        if tuple(train.image_shape) != expected_image_shape(teacher):
            raise VitTutorialError(f"the teacher expects images {expected_image_shape(teacher)}, the data's are "
                                   f"{tuple(train.image_shape)}")
        teacher.to(device).eval().requires_grad_(False)
        distill_args = dict(kind=distill, weight=distill_weight, temperature=distill_temperature)
    model.to(device)
    autocast_dtype = choose_amp(model, device, amp)
    average = WeightAverage(model, ema) if ema is not None else None
    steps_per_epoch = math.ceil(len(train) / batch_size)
    optimizer = make_optimizer(model, lr, weight_decay)
    scheduler = warmup_cosine_schedule(optimizer, steps_per_epoch, epochs, warmup_epochs)
    generator = torch.Generator().manual_seed(seed)  # the order of the images and the augmentation
    torch.manual_seed(seed)  # dropout draws from the global generator
    # what a resumed run must share with the one it continues
    settings = dict(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                    warmup_epochs=warmup_epochs, label_smoothing=label_smoothing, augment=aug.record(),
                    grad_clip=grad_clip, seed=seed,
                    amp=amp_name(autocast_dtype),
                    dataset=train.name, train_size=len(train), val_size=len(val) if val is not None else 0)
    if teacher is not None:  # only then, so that runs saved before distillation existed still resume
        settings["distill"] = dict(distill_args, teacher=type(teacher).__name__,
                                   teacher_parameters=sum(p.numel() for p in teacher.parameters()))
    if average is not None:  # likewise
        settings["ema"] = ema

    history, start_epoch = History(), 1
    if out_dir is not None:
        done = (resume_run(out_dir, model, optimizer, scheduler, generator, settings, average=average)
                if resume else None)
        if done is not None:
            start_epoch, history = done[0] + 1, History.from_dict(done[1])
            if verbose:
                print(f"Resuming from {Path(out_dir) / 'checkpoint.pt'} after epoch {done[0]}.")
        start_run(out_dir, model, snapshot=0 in snapshot_epochs and start_epoch == 1)

    bar = None
    if progress and start_epoch <= epochs:
        from tqdm import tqdm

        bar = tqdm(total=(epochs - start_epoch + 1) * steps_per_epoch, desc="training", unit="batch",
                   file=sys.stdout, mininterval=1.0, dynamic_ncols=True)
    for epoch in range(start_epoch, epochs + 1):
        row = train_epoch(model, train, optimizer, scheduler, generator, aug, batch_size=batch_size, device=device,
                          autocast_dtype=autocast_dtype, label_smoothing=label_smoothing, grad_clip=grad_clip,
                          bar=bar, label=f"{epoch}/{epochs}", teacher=teacher, distill=distill_args,
                          average=average)
        row["val_loss"], row["val_acc"] = validate(average.model if average is not None else model, val, device,
                                                   autocast_dtype)
        history.append(epoch=epoch, **row)
        if verbose:  # through the bar when there is one, so that the line does not tear it
            (bar.write if bar is not None else print)(epoch_line(epoch, epochs, row), file=sys.stdout)
        if out_dir is not None:
            save_run(out_dir, model, epoch, optimizer=optimizer, scheduler=scheduler, generator=generator,
                     history=history.to_dict(), settings=settings, data=train, snapshot_epochs=snapshot_epochs,
                     average=average)
    if bar is not None:
        bar.close()
    if average is not None:
        model.load_state_dict(average.model.state_dict())
    model.eval()
    return history
