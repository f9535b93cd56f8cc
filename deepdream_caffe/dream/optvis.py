"""Feature visualisation from noise, as lucid's ``optvis`` does it: a parameterised image, transforms, Adam.

Olah, Mordvintsev and Schubert (2017), "Feature Visualization" (Distill),
and its library lucid. Three choices, each data here, feed one loop
(:func:`render_vis`):

* the **parameterisation** of the image (lucid's ``optvis/param/spatial.py``):
  :class:`PixelImage`, one number per pixel and colour, or
  :class:`FourierImage` (lucid's ``fft_image``), the image the inverse real
  FFT of coefficients scaled by ``sqrt(h*w) / max(|f|, 1/max(h, w))**decay_power``
  and divided by 4, so that each frequency band starts with energy falling as
  1/f, as in photos, and the steps do not favour high frequencies;
* the **colour** (lucid's ``optvis/param/color.py``, ``to_valid_rgb``): the
  three values per pixel are either RGB directly or coordinates in a
  decorrelated colour space, mapped to RGB by :data:`COLOR_CORRELATION_SVD_SQRT`
  (lucid's square root of ImageNet's colour correlation, its columns scaled so
  that the largest has norm 1); then a sigmoid gives RGB in 0..1;
* the **transforms** the net sees the image through, drawn anew each step
  (lucid's ``optvis/transform.py``, ``standard_transforms``): pad 12 (grey),
  jitter 8, scale by one of 0.90, 0.92, ..., 1.10, rotate by one of
  -10..10 degrees (0 five more times), jitter 4. Here they are composed into
  one affine map sampled bilinearly (grey outside the image, also where
  lucid's rotation fills black) and cropped or padded about the centre back to
  the canvas size, so that the net's input keeps one shape (lucid's
  ``crop_or_pad_to``, which it offers for nets with a fixed input).

The step is Adam's (Kingma and Ba 2015; lucid's ``render_vis`` default,
learning rate 0.05) on the parameters, ascending the objective. Caffe's
backward pass gives the gradient with respect to the net's input ``x``; the
chain rule takes it back to the parameters ``p``, every map linear but the
sigmoid:

    x  = swap(255 * W(rgb)) - mean         dL/drgb = 255 * W^T(swap^-1(dL/dx))
    rgb = sigmoid(z)                        dL/dz   = rgb * (1 - rgb) * dL/drgb
    z  = M t   (M the colour matrix or I)   dL/dt   = M^T dL/dz
    t  = irfft2(S * (p_re + i p_im)) / 4    dL/dp   = S/4 * c * rfft2(dL/dt) / (h*w)   (re, im parts)

with ``W`` the warp of the transforms (``W^T`` scatters the bilinear weights
back) and ``c`` 2 for the Fourier columns that stand for a conjugate pair, 1
for the zero-frequency column (and the Nyquist one, ``w`` even), whose
imaginary parts the inverse real FFT drops. ``tests/dream/test_optvis.py``
checks each against finite differences.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import DeepDreamError
from ..net.access import input_blob, raw_net
from .gradient import check_objective
from .objectives import Objective
from .octaves import OctaveCheckpoint
from .params import Optvis
from .sizing import check_size_fits
from .transform import net_channel_swap, preprocess
from .visualize import TiledScore

# lucid's color_correlation_svd_sqrt (optvis/param/color.py): the square root, by SVD, of the correlation
# of R, G and B over ImageNet's photos; rows R, G, B.
COLOR_CORRELATION_SVD_SQRT = np.array([[0.26, 0.09, 0.02],
                                       [0.27, 0.00, -0.05],
                                       [0.27, -0.09, 0.03]])
COLOR_MATRIX = COLOR_CORRELATION_SVD_SQRT / np.linalg.norm(COLOR_CORRELATION_SVD_SQRT, axis=0).max()
FILL = 0.5  # what the transforms show outside the image: lucid's pad value, grey in 0..1
CHECKPOINT_EVERY = 50  # steps between the states a run resumes from

ScoreCallback = Callable[[int, int, float], None]  # (octave: always 0, step, objective)


# ---------------------------------------------------------------- parameterisations


@dataclass(frozen=True)
class PixelImage:
    """One parameter per pixel and colour: the image itself (3 x h x w) before the colour map."""

    h: int
    w: int

    @property
    def shape(self) -> Tuple[int, ...]:
        return (3, self.h, self.w)

    def image(self, p: np.ndarray) -> np.ndarray:
        return p

    def adjoint(self, g: np.ndarray) -> np.ndarray:
        return g


def rfft2d_freqs(h: int, w: int) -> np.ndarray:
    """|f| in cycles per pixel of each coefficient of ``numpy.fft.rfft2`` of an h x w image."""
    return np.hypot(np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :])


@dataclass(frozen=True)
class FourierImage:
    """lucid's ``fft_image``: real and imaginary parts of the half spectrum (2 x 3 x h x (w//2+1)),
    scaled by 1/f**decay_power, through the inverse real FFT."""

    h: int
    w: int
    decay_power: float = 1.0

    @property
    def shape(self) -> Tuple[int, ...]:
        return (2, 3, self.h, self.w // 2 + 1)

    def scale(self) -> np.ndarray:
        f = np.maximum(rfft2d_freqs(self.h, self.w), 1.0 / max(self.h, self.w))
        return np.sqrt(self.h * self.w) / f ** self.decay_power / 4.0

    def image(self, p: np.ndarray) -> np.ndarray:
        return np.fft.irfft2(self.scale() * (p[0] + 1j * p[1]), s=(self.h, self.w))

    def adjoint(self, g: np.ndarray) -> np.ndarray:
        c = np.full(self.w // 2 + 1, 2.0)
        c[0] = 1.0
        if self.w % 2 == 0:
            c[-1] = 1.0
        z = np.fft.rfft2(g) * (c * self.scale() / (self.h * self.w))
        return np.stack([z.real, z.imag])


def spatial(settings: Optvis, h: int, w: int) -> Any:
    """The parameterisation ``settings.param`` names, for an h x w image."""
    return FourierImage(h, w, settings.decay_power) if settings.param == "fft" else PixelImage(h, w)


def to_valid_rgb(t: np.ndarray, decorrelate: bool) -> np.ndarray:
    """3 x h x w values -> RGB in 0..1: through :data:`COLOR_MATRIX` if ``decorrelate``, then a sigmoid."""
    z = np.einsum("cj,jhw->chw", COLOR_MATRIX, t) if decorrelate else t
    return 1.0 / (1.0 + np.exp(-z))


def to_valid_rgb_adjoint(rgb: np.ndarray, g: np.ndarray, decorrelate: bool) -> np.ndarray:
    """dL/dt from dL/drgb, ``rgb`` being :func:`to_valid_rgb`'s output."""
    gz = g * rgb * (1.0 - rgb)
    return np.einsum("cj,chw->jhw", COLOR_MATRIX, gz) if decorrelate else gz


# ---------------------------------------------------------------- transforms
# Each draws, for an image of size (h, w), the size after it and the 3x3 map from the new image's
# (y, x, 1) to the old one's (pixel centres at whole numbers).


def _shift(dy: float, dx: float) -> np.ndarray:
    return np.array([[1.0, 0, dy], [0, 1.0, dx], [0, 0, 1.0]])


@dataclass(frozen=True)
class Pad:
    """Pad ``width`` pixels of grey on every side."""

    width: int

    def draw(self, size: Tuple[int, int], rng: np.random.RandomState) -> Tuple[Tuple[int, int], np.ndarray]:
        h, w = size
        return (h + 2 * self.width, w + 2 * self.width), _shift(-self.width, -self.width)


@dataclass(frozen=True)
class Jitter:
    """A random crop ``d`` pixels smaller in each direction: a shift by 0..d."""

    d: int

    def draw(self, size: Tuple[int, int], rng: np.random.RandomState) -> Tuple[Tuple[int, int], np.ndarray]:
        oy, ox = rng.randint(0, self.d + 1, 2)
        return (size[0] - self.d, size[1] - self.d), _shift(oy, ox)


@dataclass(frozen=True)
class RandomScale:
    """Resize by a factor drawn from ``scales``."""

    scales: Tuple[float, ...]

    def draw(self, size: Tuple[int, int], rng: np.random.RandomState) -> Tuple[Tuple[int, int], np.ndarray]:
        s = self.scales[rng.randint(len(self.scales))]
        h, w = size
        nh, nw = max(1, int(s * h)), max(1, int(s * w))
        ry, rx = h / nh, w / nw
        return (nh, nw), np.array([[ry, 0, 0.5 * ry - 0.5], [0, rx, 0.5 * rx - 0.5], [0, 0, 1.0]])


@dataclass(frozen=True)
class RandomRotate:
    """Rotate about the centre by an angle in degrees drawn from ``angles``."""

    angles: Tuple[float, ...]

    def draw(self, size: Tuple[int, int], rng: np.random.RandomState) -> Tuple[Tuple[int, int], np.ndarray]:
        a = math.radians(self.angles[rng.randint(len(self.angles))])
        cy, cx = (size[0] - 1) / 2.0, (size[1] - 1) / 2.0
        rot = np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1.0]])
        return size, _shift(cy, cx) @ rot @ _shift(-cy, -cx)


STANDARD_TRANSFORMS = (
    Pad(12),
    Jitter(8),
    RandomScale(tuple(1 + (i - 5) / 50.0 for i in range(11))),
    RandomRotate(tuple(float(a) for a in range(-10, 11)) + (0.0,) * 5),
    Jitter(4),
)
TRANSFORMS = {"none": (), "standard": STANDARD_TRANSFORMS}


@dataclass(frozen=True)
class Warp:
    """Bilinear sampling of a (C, h, w) image at fixed points: four source indices and weights per output
    pixel, weight 0 outside the image (where :data:`FILL` shows)."""

    index: np.ndarray  # (4, n) flat source indices
    weight: np.ndarray  # (4, n)
    src: Tuple[int, int]
    out: Tuple[int, int]

    def apply(self, img: np.ndarray) -> np.ndarray:
        flat = img.reshape(img.shape[0], -1) - FILL
        out = sum(self.weight[k] * flat[:, self.index[k]] for k in range(4))
        return (out + FILL).reshape(img.shape[0], *self.out)

    def adjoint(self, g: np.ndarray) -> np.ndarray:
        n = self.src[0] * self.src[1]
        flat = g.reshape(g.shape[0], -1)
        out = np.zeros((g.shape[0], n))
        for k in range(4):
            for c in range(g.shape[0]):
                out[c] += np.bincount(self.index[k], weights=self.weight[k] * flat[c], minlength=n)
        return out.reshape(g.shape[0], *self.src)


def warp_at(m: np.ndarray, src: Tuple[int, int], out: Tuple[int, int]) -> Warp:
    """The :class:`Warp` that samples an image of size ``src`` at ``m @ (y, x, 1)`` for each output pixel."""
    yy, xx = np.mgrid[0:out[0], 0:out[1]].astype(np.float64)
    pts = m @ np.stack([yy.ravel(), xx.ravel(), np.ones(yy.size)])
    y0, x0 = np.floor(pts[0]), np.floor(pts[1])
    fy, fx = pts[0] - y0, pts[1] - x0
    index, weight = [], []
    for dy, dx, wt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
        yi, xi = (y0 + dy).astype(np.int64), (x0 + dx).astype(np.int64)
        inside = (yi >= 0) & (yi < src[0]) & (xi >= 0) & (xi < src[1])
        index.append(np.where(inside, yi * src[1] + xi, 0))
        weight.append(np.where(inside, wt, 0.0))
    return Warp(np.stack(index), np.stack(weight), tuple(src), tuple(out))


def draw_warp(transforms: Sequence[Any], h: int, w: int, rng: np.random.RandomState) -> Optional[Warp]:
    """One draw of ``transforms`` on an h x w image, cropped or padded about the centre back to h x w
    (None without transforms)."""
    if not transforms:
        return None
    size, m = (h, w), np.eye(3)
    for t in transforms:
        size, step = t.draw(size, rng)
        m = m @ step
    m = m @ _shift((size[0] - h) // 2, (size[1] - w) // 2)
    return warp_at(m, (h, w), (h, w))


# ---------------------------------------------------------------- the loop


@dataclass
class Adam:
    """Adam's ascent (Kingma and Ba 2015, Algorithm 1, with its default betas and epsilon)."""

    learning_rate: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    t: int = 0
    m: Any = None
    v: Any = None

    def step(self, p: np.ndarray, g: np.ndarray) -> np.ndarray:
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * g
        self.v = self.beta2 * self.v + (1 - self.beta2) * g * g
        mh, vh = self.m / (1 - self.beta1 ** self.t), self.v / (1 - self.beta2 ** self.t)
        return p + self.learning_rate * mh / (np.sqrt(vh) + self.eps)


@dataclass
class Scene:
    """What maps the parameters to the net's input and gradients back (the module docstring's chain)."""

    net: Any
    param: Any
    decorrelate: bool
    score: TiledScore
    objective: Objective

    def rgb(self, p: np.ndarray) -> np.ndarray:
        """The image the parameters ``p`` stand for: 3 x h x w RGB in 0..1."""
        return to_valid_rgb(self.param.image(p), self.decorrelate)

    def value_and_grad(self, p: np.ndarray, warp: Optional[Warp]) -> Tuple[float, np.ndarray]:
        """The objective on the image seen through ``warp``, and its gradient with respect to ``p``."""
        rgb = self.rgb(p)
        seen = warp.apply(rgb) if warp is not None else rgb
        x = preprocess(self.net, (255.0 * seen).transpose(1, 2, 0))
        values: List[Optional[float]] = [None] * len(self.objective.terms)
        gx = self.score(raw_net(self.net), self.objective, x, values)
        g = 255.0 * gx[np.argsort(net_channel_swap(self.net))]
        if warp is not None:
            g = warp.adjoint(g)
        return self.objective.total(values), self.param.adjoint(to_valid_rgb_adjoint(rgb, g, self.decorrelate))


def describe(settings: Optvis) -> Dict[str, Any]:
    """The settings with what they stand for spelled out, for a run's record."""
    return {**asdict(settings), "color_matrix": COLOR_MATRIX.round(6).tolist() if settings.decorrelate else None,
            "transform_list": [{"name": type(t).__name__, **asdict(t)} for t in TRANSFORMS[settings.transforms]],
            "fill": FILL, "optimizer": {"adam": {k: v for k, v in asdict(Adam(settings.learning_rate)).items()
                                                 if k in ("learning_rate", "beta1", "beta2", "eps")}}}


def render_vis(
    net: Any,
    objective: Objective,
    *,
    size: Tuple[int, int],
    iter_n: int,
    settings: Optvis = Optvis(),
    native: Optional[Tuple[int, int]] = None,
    rng: Optional[np.random.RandomState] = None,
    callback: Optional[ScoreCallback] = None,
    checkpoint: Optional[OctaveCheckpoint] = None,
) -> Tuple[np.ndarray, Dict[str, Any]]:
    """The h x w image (``size``) that maximises ``objective``, from noise; returns (float32 HxWx3 RGB 0..255, info).

    ``iter_n`` Adam steps on the parameters ``settings`` chooses (module
    docstring). ``native`` is a fixed input size of the net (a classifier's):
    the objective is then the mean over native-size tiles of the canvas
    (:class:`~deepdream_caffe.dream.visualize.TiledScore`); by default the
    net takes the canvas whole. ``rng`` draws the starting noise and the
    transforms; ``callback(0, step, value)`` follows the ascent. ``info``
    holds the expression, the settings and the objective at each step and
    at the end (on the image itself, untransformed). Every
    :data:`CHECKPOINT_EVERY` steps the parameters and Adam's moments are
    rounded to float32, and with a ``checkpoint`` kept there with the
    generator (block ``k`` after step ``(k+1)*CHECKPOINT_EVERY``): a run cut
    short resumes from its last block to the same pixels.
    """
    h, w = size
    seen = tuple(native or (h, w))  # what the net takes: the canvas, or its tiles
    rng = rng if rng is not None else np.random.RandomState(0)
    if getattr(net, "param", None) is not None:  # load_net's nets keep their prototxt for Caffe to judge
        for layer in objective.layers:
            check_size_fits(net.param, layer, *seen)
    input_blob(raw_net(net)).reshape(1, 3, *seen)
    check_objective(net, objective)
    param = spatial(settings, h, w)
    scene = Scene(net, param, settings.decorrelate, TiledScore(seen), objective)
    transforms = TRANSFORMS[settings.transforms]
    p = rng.normal(0.0, settings.sd, param.shape)
    adam = Adam(settings.learning_rate, m=np.zeros_like(p), v=np.zeros_like(p))
    start = 0
    got = None if checkpoint is None else checkpoint.load([(3, *param.shape)] * -(-iter_n // CHECKPOINT_EVERY))
    if got is not None:
        start = adam.t = (got[0] + 1) * CHECKPOINT_EVERY
        p, adam.m, adam.v = (np.float64(a) for a in got[1])
    scores: List[float] = []
    for i in range(start, iter_n):
        value, g = scene.value_and_grad(p, draw_warp(transforms, h, w, rng))
        if i == 0 and not np.any(g):
            raise DeepDreamError(f"the gradient of {objective!r} is 0 on the starting noise (no path from the "
                                 "input moves it); try another unit or layer")
        scores.append(value)
        p = adam.step(p, g)
        if (i + 1) % CHECKPOINT_EVERY == 0 and i + 1 < iter_n:
            # rounded whether kept or not, so that the run resumed from here is the same run
            state = np.float32([p, adam.m, adam.v])
            p, adam.m, adam.v = (np.float64(a) for a in state)
            if checkpoint is not None:
                checkpoint.save((i + 1) // CHECKPOINT_EVERY - 1, state)
        if callback is not None:
            callback(0, i, value)
    final, _ = scene.value_and_grad(p, None)
    rgb = scene.rgb(p)
    info = {"mode": "optvis", "expression": repr(objective), "size": [h, w], "iter_n": iter_n,
            "optvis": describe(settings), "scores": [scores + [final]], "final_score": final,
            "resumed_after_step": start or None}
    return (255.0 * rgb).transpose(1, 2, 0).astype(np.float32), info
