"""Real pictures made to look like the data a model was trained on.

A model trained on MNIST has only ever seen light ink on a black
background, about 20 pixels tall, with its centre of mass in the middle of
a 28x28 frame. A photo or a scan of a digit is none of that: any size,
dark ink on light paper, anywhere in the frame. :func:`prepare_image`
repeats on the picture the steps that made the dataset:

- ``"mnist"`` (the recipe of LeCun et al.): grey levels; light ink on
  black (inverted when the ink is darker than the paper); cropped to the
  ink; the longer side scaled to 20 pixels with antialiasing, keeping the
  aspect ratio; placed in 28x28 so that the ink's centre of mass is in the
  middle (clipped so the digit stays in the frame).
- ``"fashion-mnist"`` (the recipe of Xiao et al.): grey levels; a light
  object on black (inverted when the background is the lighter side, as the
  dataset's product photos on white were); trimmed to the object; the
  longer side scaled to 28 pixels and the object centred.
- anything else, CIFAR-10 included (photos that fill their frame): grey or
  RGB as the model takes it, the largest centred square, resized to the
  model's size. No inversion.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import VitTutorialError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DIGIT_BOX = 20 / 28  # MNIST's digits fit a 20-pixel box in a 28-pixel frame
# Measured on MNIST itself: the ink's centre of mass sits at (14.0, 14.0) in
# pixel indices (0..27), half a pixel right of and below the frame's middle.
DIGIT_CENTRE = 14 / 28
INK_THRESHOLD = 0.25  # after normalising paper to 0 and the darkest ink to 1: what counts as ink for the crop
MIN_CONTRAST = 0.1  # a picture whose grey levels span less than this holds no ink (a blank page, JPEG noise)
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, the weights of PIL's convert("L")


def read_image(path: str | Path):
    """A PNG or JPEG file (or any picture PIL reads) as a PIL image, turned upright by its EXIF tag."""
    from PIL import Image, ImageOps

    path = Path(path)
    if path.is_dir():
        raise VitTutorialError(f"{path} is a folder, not an image")
    if not path.is_file():
        raise VitTutorialError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            im.load()  # PIL reads lazily: decode now, so that a damaged file fails here, while the file is open
            # Phones store photos sideways and say so in EXIF; a sideways 7 is no 7.
            return ImageOps.exif_transpose(im)
    except Image.DecompressionBombError:
        raise VitTutorialError(f"{path} has too many pixels to be read safely") from None
    except Exception as e:  # noqa: BLE001 - PIL raises many kinds (OSError, SyntaxError, zlib.error...) for a bad file
        raise VitTutorialError(f"cannot read {path} as an image: not a PNG or JPEG file, or a damaged one "
                               f"({type(e).__name__})") from None


def image_files(path: str | Path) -> list[Path]:
    """The PNG and JPEG files in a folder (not its subfolders), sorted by name."""
    path = Path(path)
    try:
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    except OSError as e:
        raise VitTutorialError(f"cannot list the folder {path} ({e.strerror or type(e).__name__})") from None
    if not files:
        raise VitTutorialError(f"{path} holds no PNG or JPEG files")
    return files


def _composite(rgb: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """(C, H, W) colours with an (H, W) alpha, laid on plain paper.

    The paper is white under dark ink and black under light ink: a digit
    drawn on a transparent background must not vanish into it.
    """
    opaque = alpha > 0.5
    if bool(opaque.all()):
        return rgb
    grey = _to_grey(rgb)[0]
    paper = 0.0 if opaque.any() and float(grey[opaque].mean()) > 0.5 else 1.0
    return rgb * alpha + paper * (1 - alpha)


def _from_pil(im) -> torch.Tensor:
    """A PIL image as (C, H, W) floats in [0, 1], C = 1, 2, 3 or 4 (grey, grey + alpha, RGB, RGBA)."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):  # 16-bit PNGs, float TIFFs
        a = np.asarray(im, dtype=np.float64)
        a = a.clip(0, 1) if im.mode == "F" and a.max() <= 1 else a / (65535 if a.max() > 255 else 255)
        return torch.from_numpy(a).float().clamp(0, 1).unsqueeze(0)
    bands = im.getbands()
    has_alpha = "A" in bands or "a" in bands or "transparency" in im.info  # palette and grey PNGs keep it in info
    grey = im.mode in ("1", "L", "LA", "La")
    target = ("LA" if has_alpha else "L") if grey else ("RGBA" if has_alpha else "RGB")
    if im.mode != target:
        try:
            im = im.convert(target)
        except (ValueError, OSError):
            raise VitTutorialError(f"cannot turn a picture of mode {im.mode} into grey levels or RGB") from None
    a = torch.from_numpy(np.array(im, dtype=np.uint8))
    if a.ndim == 2:
        a = a.unsqueeze(-1)
    return a.permute(2, 0, 1).float() / 255  # (H, W, C) -> (C, H, W)


def _from_array(a) -> torch.Tensor:
    """A numpy array or tensor as (C, H, W) floats in [0, 1].

    Shapes: (H, W), (H, W, C) or (C, H, W) with C from 1 to 4, or a batch of
    one. uint8 and other integers up to 255 are 8-bit levels (larger ones
    16-bit); floats are taken as already in [0, 1].
    """
    if not isinstance(a, torch.Tensor):
        a = np.array(a)  # a copy, ours to change (torch refuses read-only arrays)
        if a.dtype.kind not in "biuf":
            raise VitTutorialError(f"an image array must hold numbers, not {a.dtype}")
        a = torch.from_numpy(a)
    x = a.detach().cpu()
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim == 2:
        x = x.unsqueeze(0)
    elif x.ndim == 3 and x.shape[-1] <= 4 < x.shape[0]:
        x = x.permute(2, 0, 1)  # (H, W, C) -> (C, H, W)
    if x.ndim != 3 or not 1 <= x.shape[0] <= 4 or x.shape[1] == 0 or x.shape[2] == 0:
        raise VitTutorialError(f"an image array must be (H, W), (H, W, C) or (C, H, W) with 1 to 4 channels, "
                               f"not {tuple(x.shape)}")
    if x.dtype == torch.bool:
        return x.float()
    if x.is_floating_point():
        return x.float().clamp(0, 1)
    x = x.double()
    return (x / (65535 if float(x.max()) > 255 else 255)).float().clamp(0, 1)


def _to_grey(x: torch.Tensor) -> torch.Tensor:
    """(3, H, W) or (1, H, W) -> (1, H, W)."""
    if x.shape[0] == 1:
        return x
    return torch.einsum("chw,c->hw", x, torch.tensor(LUMA)).unsqueeze(0)


def as_tensor(image) -> torch.Tensor:
    """A PIL image, a path, or an array as (C, H, W) floats in [0, 1] with C = 1 (grey) or 3 (RGB), alpha flattened."""
    if isinstance(image, (str, Path)):
        image = read_image(image)
    if hasattr(image, "getbands"):  # a PIL image (PIL need not be imported to know one)
        x = _from_pil(image)
    else:
        x = _from_array(image)
    if x.shape[0] in (2, 4):  # grey + alpha, RGBA
        x = _composite(x[:-1], x[-1])
    return x


def _resize(x: torch.Tensor, size: tuple) -> torch.Tensor:
    """(C, H, W) -> (C, *size), antialiased when shrinking (plain bilinear subsampling would alias thin strokes)."""
    if tuple(x.shape[1:]) == tuple(size):
        return x
    return F.interpolate(x.unsqueeze(0), size=size, mode="bilinear", antialias=True, align_corners=False)[0]


def _sample(x: torch.Tensor, n: int = 1_000_000) -> torch.Tensor:
    """At most about ``n`` of the pixels of (H, W), evenly spread: enough for quantiles of a 50-megapixel photo."""
    step = max(1, math.ceil(math.sqrt(x.numel() / n)))
    return x[::step, ::step].flatten()


def _paper_and_ink(grey: torch.Tensor) -> torch.Tensor:
    """(H, W) grey levels -> (H, W) ink in [0, 1]: the paper 0, the strongest ink 1.

    The paper is the median of the picture's border. The ink is whichever
    extreme lies farther from it: darker than the paper (a pen on paper, a
    dark object on white) or lighter (chalk on a board, MNIST itself).
    Comparing with the paper rather than with mid-grey also works for grey
    paper in dim light.
    """
    H, W = grey.shape
    band = max(1, round(0.04 * min(H, W)))
    border = torch.cat([grey[:band].flatten(), grey[-band:].flatten(),
                        grey[:, :band].flatten(), grey[:, -band:].flatten()])
    paper = float(border.median())
    # The 0.1 % and 99.9 % levels rather than min and max: one dust speck must not decide.
    lo, hi = torch.quantile(_sample(grey), torch.tensor([0.001, 0.999])).tolist()
    dark_ink = paper - lo > hi - paper if abs((paper - lo) - (hi - paper)) > 0.02 else paper > 0.5
    ink = 1 - grey if dark_ink else grey
    paper = 1 - paper if dark_ink else paper
    strongest = float(ink.max())
    if strongest - paper < MIN_CONTRAST:
        raise VitTutorialError("the picture is blank: no ink stands out from the paper")
    return ((ink - paper) / (strongest - paper)).clamp(0, 1)


def _ink_box(ink: torch.Tensor) -> tuple:
    """(top, bottom, left, right), bounds exclusive, of the pixels of (H, W) ``ink`` above the threshold."""
    rows = (ink > INK_THRESHOLD).any(1).nonzero().flatten()
    cols = (ink > INK_THRESHOLD).any(0).nonzero().flatten()
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _scale_longer_side(x: torch.Tensor, side: int) -> torch.Tensor:
    """(1, h, w) -> (1, h', w') with max(h', w') = side and the aspect ratio kept."""
    h, w = x.shape[1:]
    scale = side / max(h, w)
    return _resize(x, (max(1, round(h * scale)), max(1, round(w * scale))))


def prepare_digit(grey: torch.Tensor, size: int = 28) -> torch.Tensor:
    """(1, H, W) grey levels of a picture of one digit -> (1, size, size) in MNIST's form."""
    ink = _paper_and_ink(grey[0])
    top, bottom, left, right = _ink_box(ink)
    digit = _scale_longer_side(ink[None, top:bottom, left:right], round(DIGIT_BOX * size))[0]
    h, w = digit.shape
    ys, xs = torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32)
    mass = digit.sum()
    cy, cx = float((digit.sum(1) * ys).sum() / mass), float((digit.sum(0) * xs).sum() / mass)
    # A whole-pixel shift, as MNIST's own: no second resampling blurs the strokes.
    y0 = min(max(round(DIGIT_CENTRE * size - cy), 0), size - h)
    x0 = min(max(round(DIGIT_CENTRE * size - cx), 0), size - w)
    out = torch.zeros(1, size, size)
    out[0, y0:y0 + h, x0:x0 + w] = digit
    return out


def prepare_fashion(grey: torch.Tensor, size: int = 28) -> torch.Tensor:
    """(1, H, W) grey levels of a picture of one product -> (1, size, size) in Fashion-MNIST's form."""
    ink = _paper_and_ink(grey[0])
    top, bottom, left, right = _ink_box(ink)
    item = _scale_longer_side(ink[None, top:bottom, left:right], size)[0]
    h, w = item.shape
    out = torch.zeros(1, size, size)
    y0, x0 = (size - h) // 2, (size - w) // 2  # the box centred, as the dataset's products are
    out[0, y0:y0 + h, x0:x0 + w] = item
    return out


def _centre_square(x: torch.Tensor) -> torch.Tensor:
    """The largest centred square of (C, H, W): a photo is cropped, not squeezed, to a square model input."""
    H, W = x.shape[1:]
    side = min(H, W)
    top, left = (H - side) // 2, (W - side) // 2
    return x[:, top:top + side, left:left + side]


def prepare_image(image, dataset: str | None, image_shape: tuple) -> torch.Tensor:
    """A picture ready for a model trained on ``dataset``: (C, H, W) floats in [0, 1] of ``image_shape``.

    ``image`` is a PIL image, a path, or an array (see :func:`as_tensor`);
    ``dataset`` chooses the recipe (module docstring), and any other name
    (or None) gets the plain one of CIFAR-10. Raises ``VitTutorialError``
    for an unreadable file or a picture with no ink to find.
    """
    C, H, W = (int(s) for s in image_shape)
    if C not in (1, 3) or H < 1 or W < 1:
        raise VitTutorialError(f"cannot prepare images of shape {tuple(image_shape)}: need (1 or 3, H, W)")
    x = as_tensor(image)
    if dataset == "mnist-sample":  # the sample's digits are MNIST's
        dataset = "mnist"
    if dataset in ("mnist", "fashion-mnist") and H == W:
        recipe = prepare_digit if dataset == "mnist" else prepare_fashion
        out = recipe(_to_grey(x), H)
    else:
        x = _to_grey(x) if C == 1 else x
        out = _resize(_centre_square(x) if H == W else x, (H, W)).clamp(0, 1)
    return out.expand(C, H, W).contiguous()  # a grey picture for an RGB model: the same level in R, G and B
