"""Class visualisation: the image a class would be, by ascent on its pre-softmax score.

Simonyan, Vedaldi and Zisserman (2014), "Deep Inside Convolutional
Networks": with the weights fixed, find the input I that maximises the
score S_k(I) of class k before the softmax, minus lambda * ||I||^2, by
back-propagation to the input, starting from the zero image of the
mean-subtracted input space (the nets were trained on zero-centred data),
and add the training mean at the end. Here that objective is
``class_score(layer, k) - 2*lambda*input_l2()`` (``input_l2`` is
0.5*||X||^2), climbed with the notebook's normalised step. With
``score="log-softmax"`` the class term is ``class_logprob(layer, k)``
instead: the log posterior, which also rises as the other classes fall
(the quantity Nguyen, Yosinski and Clune 2015 drive to confident images).

Yosinski, Clune, Nguyen, Fuchs and Lipson (2015), "Understanding Neural
Networks Through Deep Visualization", add image transforms after each
step, each with a hyperparameter of their Table 1:

    theta_decay    X <- (1 - theta_decay) * X                    (L2 decay as the paper applies it)
    theta_b_width  Gaussian blur of sigma theta_b_width ...
    theta_b_every  ... every theta_b_every steps
    theta_n_pct    pixels whose norm over channels is below that percentile set to 0
    theta_c_pct    pixels whose |sum_c X * dS/dX| (the linearised drop of the score when the pixel
                   is zeroed) is below that percentile set to 0

The four published sets (decay, blur width, blur every, n_pct, c_pct) are
(0, 0.5, 4, 50, 0), (0.3, 0, 0, 20, 0), (0.0001, 1.0, 4, 0, 0) and
(0, 0.5, 4, 0, 90); the third is the one most of the paper's images use and
is the default here (:data:`YOSINSKI_SETS`). Jitter is the notebook's.

Beyond the native size (a classifier layer takes only that size) the score
is the mean of the class scores of native-size tiles covering the canvas
(:class:`TiledScore`), and octaves go upward: the first octave is the
smallest size of at least the native size, each next one octave_scale
larger, the detail carried up as in ``deepdream``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import scipy.ndimage as nd

from ..errors import DeepDreamError
from ..net.access import input_blob, raw_net
from . import defaults as nb
from .gradient import add_input_terms, check_objective, net_gradient
from .lbfgs import LbfgsSolver, with_priors
from .objectives import Objective, class_logprob, class_score, input_l2
from .octaves import (
    OctaveCheckpoint,
    octave_pyramid,
    run_octaves,
    shrink_limit,
    shrinking_sizes,
    zoom_planes,
)
from .params import Ascent, Lbfgs, Octaves, check
from .step import ascent_update, draw_jitter
from .transform import deprocess, pixel_range, preprocess

# Yosinski et al. 2015, Table 1 (theta_decay, theta_b_width, theta_b_every, theta_n_pct, theta_c_pct),
# as the deep-visualization-toolbox's doc/running-optimize-image.md lists them, in the table's order.
YOSINSKI_SETS: Tuple[Tuple[float, float, int, float, float], ...] = (
    (0.0, 0.5, 4, 50.0, 0.0),
    (0.3, 0.0, 0, 20.0, 0.0),
    (0.0001, 1.0, 4, 0.0, 0.0),
    (0.0, 0.5, 4, 0.0, 90.0),
)
DEFAULT_SET = 3  # "the ones used for most of the images in the paper"
NOISE_AMPLITUDE = 16.0  # --init noise: uniform in +-this around the mean, in 0..255 pixel units

ScoreCallback = Callable[[int, int, float], None]  # (octave, step, class score)


@dataclass(frozen=True)
class Regularizers:
    """The priors and transforms of a class visualisation (defaults: Yosinski et al.'s set 3, no L2 term)."""

    l2: float = 0.0  # Simonyan's lambda: the objective is S_k - l2 * ||X||^2 (they publish no value)
    decay: float = YOSINSKI_SETS[DEFAULT_SET - 1][0]  # theta_decay
    blur_sigma: float = YOSINSKI_SETS[DEFAULT_SET - 1][1]  # theta_b_width
    blur_every: int = YOSINSKI_SETS[DEFAULT_SET - 1][2]  # theta_b_every
    norm_pct: float = YOSINSKI_SETS[DEFAULT_SET - 1][3]  # theta_n_pct
    contrib_pct: float = YOSINSKI_SETS[DEFAULT_SET - 1][4]  # theta_c_pct

    @classmethod
    def yosinski(cls, n: int, l2: float = 0.0) -> "Regularizers":
        """Set ``n`` (1-4) of Yosinski et al.'s Table 1."""
        if not (isinstance(n, int) and 1 <= n <= len(YOSINSKI_SETS)):
            raise DeepDreamError(f"the paper has hyperparameter sets 1 to {len(YOSINSKI_SETS)}, not {n!r}")
        d, bw, be, npct, cpct = YOSINSKI_SETS[n - 1]
        return cls(l2, d, bw, be, npct, cpct)

    def __post_init__(self) -> None:
        for key in ("l2", "decay", "blur_sigma", "norm_pct", "contrib_pct"):
            check(self, key, float, lambda v: v >= 0, "a finite number >= 0")
        check(self, "decay", float, lambda v: v < 1, "below 1 (X is multiplied by 1 - decay)")
        for key in ("norm_pct", "contrib_pct"):
            check(self, key, float, lambda v: v < 100, "a percentile below 100")
        check(self, "blur_every", int, lambda v: v >= 0, "a whole number >= 0")


def class_objective(layer: str, k: int, l2: float = 0.0, score: str = nb.CLASS_SCORE) -> Objective:
    """Simonyan's objective: ``class_score(layer, k) - l2 * ||X||^2`` (as ``- 2*l2*input_l2()``);
    ``score="log-softmax"`` puts ``class_logprob(layer, k)`` in place of the raw score."""
    if score not in nb.CLASS_SCORES:
        raise DeepDreamError(f"score must be {' or '.join(nb.CLASS_SCORES)}, got {score!r}")
    obj = class_score(layer, k) if score == "logit" else class_logprob(layer, k)
    return obj - (2.0 * l2) * input_l2() if l2 > 0 else obj


# ---------------------------------------------------------------- the transforms (Yosinski et al.)


def decay(x: np.ndarray, theta: float) -> np.ndarray:
    """``(1 - theta) * x``: the paper's L2 decay r(x)."""
    return x * (1.0 - theta)


def blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Each channel of ``x`` (CxHxW) blurred by a Gaussian of ``sigma`` pixels (scipy's, reflected borders)."""
    return np.stack([nd.gaussian_filter(c, sigma) for c in x]).astype(x.dtype, copy=False)


def clip_small_norm(x: np.ndarray, pct: float) -> np.ndarray:
    """``x`` with the pixels whose norm over channels is below the ``pct`` percentile set to 0."""
    norms = np.linalg.norm(x, axis=0)
    return x * (norms >= np.percentile(norms, pct))[None]


def contribution(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """|sum_c x * g| per pixel (HxW): the first-order change of the score when the pixel is set to 0."""
    return np.abs(np.sum(x.astype(np.float64) * g, axis=0))


def clip_small_contribution(x: np.ndarray, g: np.ndarray, pct: float) -> np.ndarray:
    """``x`` with the pixels whose :func:`contribution` is below the ``pct`` percentile set to 0."""
    c = contribution(x, g)
    return x * (c >= np.percentile(c, pct))[None]


def apply_transforms(x: np.ndarray, g: np.ndarray, step: int, reg: Regularizers) -> np.ndarray:
    """The paper's order after the update: decay, blur (on steps 0, every, 2*every, ...), norm, contribution."""
    if reg.decay > 0:
        x = decay(x, reg.decay)
    if reg.blur_every > 0 and reg.blur_sigma > 0 and step % reg.blur_every == 0:
        x = blur(x, reg.blur_sigma)
    if reg.norm_pct > 0:
        x = clip_small_norm(x, reg.norm_pct)
    if reg.contrib_pct > 0:
        x = clip_small_contribution(x, g, reg.contrib_pct)
    return x


# ---------------------------------------------------------------- the score over a canvas


def tile_starts(n: int, tile: int) -> List[int]:
    """Evenly spread starts of the fewest ``tile``-long windows that cover 0..n (the last ends at n)."""
    if n <= tile:
        return [0]
    count = -(-n // tile)
    return sorted({int(round(v)) for v in np.linspace(0, n - tile, count)})


@dataclass
class TiledScore:
    """The objective's gradient on a canvas as the mean over native-size tiles covering it.

    The net's terms are evaluated on each tile (the net stays at its native
    size, so a classifier layer accepts it); their values and gradients are
    averaged over the tiles; terms on the input are taken on the whole
    canvas. A canvas of the native size is one tile: the plain gradient.
    """

    native: Tuple[int, int]

    def __call__(self, cnet: Any, objective: Objective, x: np.ndarray,
                 values: Optional[List[Optional[float]]] = None) -> np.ndarray:
        th, tw = self.native
        _, h, w = x.shape
        if h < th or w < tw:
            raise DeepDreamError(f"a {w}x{h} canvas is smaller than the net's {tw}x{th} input")
        src = input_blob(cnet)
        if tuple(src.data.shape[-2:]) != (th, tw):
            src.reshape(1, x.shape[0], th, tw)
        g = np.zeros(x.shape, dtype=np.float64)
        n_terms = len(objective.terms)
        sums = [0.0] * n_terms
        tiles = [(y0, x0) for y0 in tile_starts(h, th) for x0 in tile_starts(w, tw)]
        for y0, x0 in tiles:
            src.data[0] = x[:, y0:y0 + th, x0:x0 + tw]
            vals: List[Optional[float]] = [None] * n_terms
            g[:, y0:y0 + th, x0:x0 + tw] += net_gradient(cnet, objective, vals)[0]
            for i, v in enumerate(vals):
                if v is not None:
                    sums[i] += v
        g /= len(tiles)
        if values is not None:
            for i, (_, t) in enumerate(objective.terms):
                if t.layer != "input":
                    values[i] = sums[i] / len(tiles)
        return add_input_terms(objective, x, g, values)


# ---------------------------------------------------------------- the solver


@dataclass
class VisualizeSolver:
    """``iter_n`` ascent steps per octave with the regularisers (an OctaveSolver)."""

    net: Any
    objective: Objective
    native: Tuple[int, int]
    iter_n: int
    step_size: float = Ascent.step_size
    jitter: int = 0
    reg: Regularizers = field(default_factory=Regularizers)
    rng: Optional[np.random.RandomState] = None
    callback: Optional[ScoreCallback] = None
    momentum: float = 0.0
    step_end: Optional[float] = None
    scores: List[List[float]] = field(default_factory=list)  # per octave run: the score before each step, then after

    def step_at(self, i: int) -> float:
        """Step ``i``'s size: ``step_size``, or linear from it to ``step_end`` over the octave's steps."""
        if self.step_end is None or self.iter_n < 2:
            return self.step_size
        return self.step_size + (self.step_end - self.step_size) * i / (self.iter_n - 1)

    def score_index(self) -> int:
        return next(i for i, (_, t) in enumerate(self.objective.terms) if t.layer != "input")

    def solve(self, octave: int, x0: np.ndarray) -> np.ndarray:
        cnet = raw_net(self.net)
        lo, hi = pixel_range(self.net)
        tiles = TiledScore(self.native)
        k = self.score_index()
        x = np.clip(np.asarray(x0, dtype=np.float32), lo, hi)
        scores: List[float] = []
        # Heavy-ball velocity (in the unshifted frame): on a ReLU/max-pool net the gradient flips sign
        # across kinks from one step to the next (successive gradients anti-correlated), so the plain
        # step zig-zags; summing the normalised gradients cancels the flipping part.
        vel: Optional[np.ndarray] = None
        for i in range(self.iter_n):
            ox, oy = draw_jitter(self.jitter, self.rng)
            xs = np.roll(x, (oy, ox), (-2, -1))
            values: List[Optional[float]] = [None] * len(self.objective.terms)
            g = tiles(cnet, self.objective, xs, values)
            scores.append(float(values[k]))  # type: ignore[arg-type]
            if not np.any(g):
                raise DeepDreamError("the gradient of the class score is 0 here (no path from the input moves "
                                     "it); try --init noise or another layer")
            if self.momentum > 0:
                d = g / np.abs(g).mean()
                vs = d if vel is None else self.momentum * np.roll(vel, (oy, ox), (-2, -1)) + d
                ascent_update(xs, vs.astype(np.float32), self.step_at(i))
                vel = np.roll(vs, (-oy, -ox), (-2, -1))
            else:
                ascent_update(xs, g.astype(np.float32), self.step_at(i))
            x = np.roll(xs, (-oy, -ox), (-2, -1))
            g = np.roll(g, (-oy, -ox), (-2, -1))
            x = np.clip(apply_transforms(x, g, i, self.reg), lo, hi).astype(np.float32)
            if self.callback is not None:
                self.callback(octave, i, scores[-1])
        values = [None] * len(self.objective.terms)
        tiles(cnet, self.objective, x, values)
        scores.append(float(values[k]))  # type: ignore[arg-type]
        self.scores.append(scores)
        return x


# ---------------------------------------------------------------- sizes and the start image


def upward_octaves(h: int, w: int, native: Tuple[int, int], octave_n: Optional[int],
                   octave_scale: float) -> Tuple[int, Optional[str]]:
    """How many octaves a ``h`` x ``w`` canvas gets: as many as keep the smallest at least the native size.

    ``octave_n=None`` takes them all; more than fit are cut, with a note.
    """
    nh, nw = native
    if h < nh or w < nw:
        raise DeepDreamError(f"the canvas {w}x{h} is smaller than the net's {nw}x{nh} input; "
                             f"visualize makes images of at least the native size")
    sizes = shrinking_sizes(h, w, octave_n or h + w, octave_scale)
    most = next((i for i, (sh, sw) in enumerate(sizes) if sh < nh or sw < nw), len(sizes))
    if octave_n is None:
        return most, None
    if octave_n > most:
        why = (shrink_limit(sizes, octave_scale).split(";")[0] if most == len(sizes)
               else f"a smaller octave would be below the net's {nw}x{nh} input")
        return most, f"using {most} octave{'s' if most > 1 else ''} instead of {octave_n}: {why}"
    return octave_n, None


def start_image(net: Any, init: Any, h: int, w: int, rng: Optional[np.random.RandomState] = None) -> np.ndarray:
    """The start in the net's input space (3xHxW, float32): ``"zero"`` (the training mean once
    deprocessed, Simonyan's start), ``"noise"`` (the mean +- :data:`NOISE_AMPLITUDE`, uniform) or an
    HxWx3 RGB image (resized to ``h`` x ``w``)."""
    if isinstance(init, str):
        if init == "zero":
            return np.zeros((3, h, w), dtype=np.float32)
        if init == "noise":
            r = rng if rng is not None else np.random
            lo, hi = pixel_range(net)
            x = r.uniform(-NOISE_AMPLITUDE, NOISE_AMPLITUDE, (3, h, w)).astype(np.float32)
            return np.clip(x, lo, hi)
        raise DeepDreamError(f"init must be 'zero', 'noise' or an image, got {init!r}")
    x = preprocess(net, np.asarray(init, dtype=np.float32))
    if x.shape[1:] != (h, w):
        x = zoom_planes(x, h / x.shape[1], w / x.shape[2])
    return x


# ---------------------------------------------------------------- the API


def visualize_class(
    net: Any,
    k: int,
    *,
    layer: str,
    native: Tuple[int, int],
    size: Optional[Tuple[int, int]] = None,
    init: Any = "zero",
    iter_n: int = nb.CLASS_ITER_N,
    octave_n: Optional[int] = None,
    octave_scale: float = Octaves.octave_scale,
    step_size: float = Ascent.step_size,
    jitter: int = 0,
    reg: Regularizers = Regularizers(),
    rng: Optional[np.random.RandomState] = None,
    callback: Optional[ScoreCallback] = None,
    momentum: float = 0.0,
    step_end: Optional[float] = None,
    checkpoint: Optional[OctaveCheckpoint] = None,
    lbfgs: Optional[Lbfgs] = None,
    score: str = nb.CLASS_SCORE,
) -> Tuple[np.ndarray, Dict[str, Any]]:
    """The image of class ``k`` at ``layer`` (pre-softmax scores); returns (float32 HxWx3 RGB, info).

    ``native`` is the net's input size (h, w; :func:`~deepdream_caffe.net.classifier.native_size`);
    ``size`` the canvas (default: native); larger canvases use octaves
    upward and tiles (module docstring). ``init`` is ``"zero"``, ``"noise"``
    or an RGB image. ``reg`` holds the regularisers; ``jitter`` shifts the
    image by up to that many pixels each step (drawn from ``rng``).
    ``callback(octave, step, score)`` follows the ascent. ``momentum`` (0: the
    papers' plain ascent) sums the normalised gradients with that decay
    (heavy ball); ``step_end`` makes the step size fall linearly from
    ``step_size`` to it over each octave's steps. With ``lbfgs`` (an
    :class:`~deepdream_caffe.dream.params.Lbfgs`: its priors and bounds; the
    data term is the class score) each octave is
    solved by L-BFGS-B on the class score minus the TV prior instead
    (native size only; the transforms do not apply). ``score`` is
    ``"logit"`` (the pre-softmax score) or ``"log-softmax"`` (log p_k). ``info`` holds the
    expression, the regularisers and the scores (JSON-able).
    """
    h, w = size if size is not None else native
    n, note = upward_octaves(h, w, native, octave_n, octave_scale)
    objective = class_objective(layer, k, reg.l2, score)
    src = input_blob(raw_net(net))
    src.reshape(1, 3, *native)
    check_objective(net, objective)
    octaves = octave_pyramid(start_image(net, init, h, w, rng), n, octave_scale)
    info: Dict[str, Any] = {"class": int(k), "layer": layer, "score": score, "native": list(native), "size": [h, w],
                            "octave_n": n, "note": note}
    if lbfgs is not None:
        if (h, w) != tuple(native):
            raise DeepDreamError("the L-BFGS variant works at the net's native size only (no tiles); "
                                 "leave out the size or use the ascent")
        solver = LbfgsSolver(net, objective, layer, lbfgs)
        if callback is not None:
            cb = callback
            solver.callback = lambda it: cb(it.octave, it.step, -it.value)  # f is minimised: the score is -f
        x = run_octaves(net, octaves, solver, checkpoint)
        info.update(mode="lbfgs", expression=repr(with_priors(objective, lbfgs.tv_weight, lbfgs.tv_beta,
                                                              lbfgs.alpha_weight, lbfgs.alpha)),
                    lbfgs=lbfgs.solver_settings(), octaves=solver.records)
    else:
        if not (0 <= momentum < 1) or (step_end is not None and not step_end > 0):
            raise DeepDreamError(f"momentum must be in [0, 1) and the last step size > 0, got {momentum!r}, "
                                 f"{step_end!r}")
        solver = VisualizeSolver(net, objective, tuple(native), iter_n, step_size, jitter, reg, rng, callback,
                                 momentum, step_end)
        x = run_octaves(net, octaves, solver, checkpoint)
        info.update(mode="ascent", expression=repr(objective), regularizers=asdict(reg), iter_n=iter_n,
                    step_size=step_size, step_end=step_end, momentum=momentum, jitter=jitter,
                    scores=solver.scores)
    vals: List[Optional[float]] = [None] * len(objective.terms)
    TiledScore(tuple(native))(raw_net(net), objective, np.asarray(x, dtype=np.float32), vals)
    info["final_score"] = float(vals[0])  # type: ignore[arg-type]
    return deprocess(net, x), info


def class_probabilities(net: Any, img: np.ndarray, layer: str) -> np.ndarray:
    """softmax of ``layer``'s scores for ``img`` (HxWx3 RGB at the net's native size), float64."""
    cnet = raw_net(net)
    src = input_blob(cnet)
    x = preprocess(net, img)
    src.reshape(1, *x.shape)
    src.data[0] = x
    cnet.forward(end=layer)
    s = cnet.blobs[cnet.top_names[layer][0]].data[0].astype(np.float64).ravel()
    e = np.exp(s - s.max())
    return e / e.sum()


def class_index(labels: Sequence[str], name: str) -> int:
    """The index of the class called ``name``: a whole line of ``labels`` or one of its comma-separated
    names, case ignored (a leading WordNet id such as ``n01440764`` is skipped)."""
    want = name.strip().lower()
    hits = []
    for i, line in enumerate(labels):
        text = line.strip()
        head, _, rest = text.partition(" ")
        if head[:1] == "n" and head[1:].isdigit() and rest:
            text = rest
        names = [p.strip().lower() for p in text.split(",")]
        if want == text.lower() or want in names:
            hits.append(i)
    if not hits:
        raise DeepDreamError(f"no class is called {name!r} in the labels")
    if len(hits) > 1:
        raise DeepDreamError(f"{len(hits)} classes are called {name!r} (indices {', '.join(map(str, hits[:5]))}); "
                             "give the index")
    return hits[0]
