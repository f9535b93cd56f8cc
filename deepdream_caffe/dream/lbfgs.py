"""The L-BFGS objective mode: each octave's image found by scipy's L-BFGS-B.

For every octave, with X0 the octave's starting input (base + the detail
carried up from the smaller octave, exactly as the ascent mode builds it),
the CxHxW input X of that octave minimises::

    f(X) = D(X) + S * (tv_weight * R_TV(X) + alpha_weight * R_alpha(X))

    gain:  D(X) = 0.5 * || phi_n(X) - gain * phi_n(X0) ||^2
    l2:    D(X) = -0.5 * || phi_n(X) ||^2      (the notebook's objective, maximised)

subject to the pixel bounds -mean <= X <= 255 - mean (L-BFGS-B bounds, not
clipping). phi_n is the output of layer ``end`` (forward up to it only);
``enhanced = gain * phi_n(X0)`` is fixed at the start of each octave, so
every octave has its own objective, defined on its own image size. The
regularisers are in :mod:`deepdream_caffe.dream.priors`. The prior weights
are relative to the layer: ``S = 0.5 * ||phi_n(X0)||^2 / (C*H*W)``, the
octave's starting energy of the dreamed layer (the objective's first
layer) per input value. Dividing f by ``0.5*||phi_n(X0)||^2`` shows why:
the l2 data term becomes minus the layer-energy gain and the prior a
per-value mean, both free of the layer's activation scale and of the image
size, so one weight serves every layer and net.

In terms of :mod:`objectives` (which are maximised) the minimised f is
``-(data - tv_weight*tv(beta) - alpha_weight*alpha_norm(alpha))`` with
``data = -feature_match(end, gain=gain)`` (gain) or ``L2(end)`` (l2), or
any :class:`~deepdream_caffe.dream.objectives.Objective` passed instead
(several layers, channels, a guide). Its gradient is the ascent mode's
(:mod:`gradient`), negated. Caffe computes in float32; scipy's side (x, f,
g, the regularisers) is float64.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from ..errors import DeepDreamError
from ..io.image import as_image_array
from ..net.access import check_layer, end_blob, input_blob, raw_net, resolve_end
from ..net.referee import ShapeError, layer_shapes
from . import defaults as nb
from .arguments import check_arguments
from .checks import check_net_finite
from .gradient import bind_start, check_objective, objective_gradient
from .lbfgsb import lbfgsb
from .objectives import L2, Objective, alpha_norm, feature_match, tv
from .octaves import OctaveCheckpoint, octave_pyramid, octave_sizes, run_octaves
from .params import LBFGS_OBJECTIVES, Ascent, Lbfgs, Octaves
from .priors import PIXEL_SCALE
from .step import ascent_update
from .transform import deprocess, pixel_range, preprocess

# The defaults are Lbfgs's (chosen on the trained open_nsfw net: README, "Measuring a dream, and choosing the defaults").
OBJECTIVES = LBFGS_OBJECTIVES
DEFAULT_OBJECTIVE = Lbfgs.objective
DEFAULT_GAIN = Lbfgs.gain
DEFAULT_TV_WEIGHT = Lbfgs.tv_weight  # relative to the layer scale S
DEFAULT_TV_BETA = Lbfgs.tv_beta
DEFAULT_ALPHA = Lbfgs.alpha
DEFAULT_MAXITER = Lbfgs.maxiter
DEFAULT_FIRST_STEP = nb.LBFGS_FIRST_STEP  # mean pixel move of L-BFGS-B's first trial point, in 0..255 levels

FORMULAS = {
    "gain": "0.5*||phi_n(X) - gain*phi_n(X0)||^2 + tv_weight*R_TV(X) + alpha_weight*R_alpha(X)",
    "l2": "-0.5*||phi_n(X)||^2 + tv_weight*R_TV(X) + alpha_weight*R_alpha(X)",
}
REGULARIZER_FORMULAS = {
    "R_TV": "sum_{c,i,j} (((X[c,i,j+1]-X[c,i,j])^2 + (X[c,i+1,j]-X[c,i,j])^2)/B^2 [+1e-6 if beta<2])^(beta/2)",
    "R_alpha": "sum_{c,i,j} |X[c,i,j]/B|^alpha",
    "B": PIXEL_SCALE,
}



@dataclass
class LbfgsStepInfo:
    """What the per-iterate callback is told (the counterpart of the ascent mode's StepInfo)."""

    net: Any
    octave: int  # 0 = smallest
    octave_n: int
    step: int  # 0-based accepted iterate within the octave
    maxiter: int
    value: float  # f at this iterate
    x: np.ndarray = field(repr=False)  # the iterate, flat float64 (net input space)
    shape: Tuple[int, int, int] = (3, 0, 0)

    def image(self) -> np.ndarray:
        """The current iterate as an HxWx3 RGB image (float32, within 0..255 by the bounds)."""
        return deprocess(self.net, np.asarray(self.x, dtype=np.float32).reshape(self.shape))


IterCallback = Callable[[LbfgsStepInfo], None]


def check_spatial_layer(net: Any, end: str, height: int, width: int) -> None:
    """Raise a one-line DeepDreamError unless ``end``'s output is a spatial map for a ``height`` x ``width`` input.

    A layer without spatial extent (an InnerProduct, a global pooling) ties
    the net to one input size or ignores where things are; neither fits an
    octave pyramid. Shapes come from the prototxt (no reshape, so nothing
    Caffe could abort on); a bare pycaffe net is judged by its current blob.
    """
    cnet = raw_net(net)
    check_layer(cnet, end)
    shape: Optional[Tuple[int, ...]] = None
    param = getattr(net, "param", None)
    if param is not None:
        try:
            shapes = layer_shapes(param, height, width, upto=end)
        except ShapeError as e:
            raise DeepDreamError(f"a {width}x{height} image is too small for layer '{end}': {e}") from None
        if end in shapes:
            shape = tuple(shapes[end]["tops"][0])
    if shape is None:
        shape = tuple(end_blob(cnet, end).data.shape)
    if len(shape) != 4 or shape[2] * shape[3] <= 1:
        dims = "x".join(str(d) for d in shape[1:])
        raise DeepDreamError(
            f"layer '{end}' has no spatial extent (output {dims}); L-BFGS mode needs a layer with a "
            "feature map, e.g. a convolution or an inception output"
        )


def data_objective(objective: Union[str, Objective], end: str, gain: float) -> Objective:
    """The data term as an objective to maximise: ``-feature_match(end, gain=gain)`` for "gain",
    ``L2(end)`` for "l2", or ``objective`` itself."""
    if isinstance(objective, Objective):
        return objective
    return -feature_match(end, gain=gain) if objective == "gain" else L2(end)


def with_priors(data: Objective, tv_weight: float, tv_beta: float, alpha_weight: float, alpha: float) -> Objective:
    """``data - tv_weight*tv(tv_beta) - alpha_weight*alpha_norm(alpha)``, zero-weight priors left out."""
    full = data
    if tv_weight > 0:
        full = full - tv_weight * tv(tv_beta)
    if alpha_weight > 0:
        full = full - alpha_weight * alpha_norm(alpha)
    return full


class OctaveObjective:
    """f(X) = -objective(X) and its gradient for one octave, evaluated through the net's input blob.

    ``data`` is the data term, an objective to maximise whose start-dependent
    terms are already fixed (:func:`~deepdream_caffe.dream.gradient.bind_start`);
    the priors are subtracted from it with their weights. Call with a flat
    float64 vector (what scipy passes); returns ``(f, grad)``, both float64.
    ``terms(x)`` gives the split of f: ``data`` (= -data(X)), the unweighted
    ``tv`` and ``alpha`` values, ``total``.
    """

    def __init__(
        self,
        net: Any,
        data: Objective,
        shape: Tuple[int, int, int],
        *,
        tv_weight: float = DEFAULT_TV_WEIGHT,
        tv_beta: float = DEFAULT_TV_BETA,
        alpha_weight: float = 0.0,
        alpha: float = DEFAULT_ALPHA,
    ) -> None:
        self.net = net
        self.cnet = raw_net(net)
        self.shape = tuple(shape)
        self.data = data
        self.tv_weight = float(tv_weight)
        self.tv_beta = float(tv_beta)
        self.alpha_weight = float(alpha_weight)
        self.alpha = float(alpha)
        self.objective = with_priors(data, self.tv_weight, self.tv_beta, self.alpha_weight, self.alpha)
        self.prior_scale = 1.0  # what the prior weights were multiplied by (octave_objective(relative=True))
        self.nfev = 0  # forward + backward passes actually run
        # The last few evaluations: scipy re-asks for the starting point, and the
        # per-iterate callback and final report want values already paid for.
        self._recent: List[Tuple[np.ndarray, Dict[str, float], np.ndarray]] = []

    def __call__(self, x: np.ndarray) -> Tuple[float, np.ndarray]:
        x = np.array(x, dtype=np.float64).reshape(self.shape)
        hit = self._lookup(x)
        if hit is not None:
            return hit[0]["total"], hit[1].copy()
        src = input_blob(self.cnet)
        if tuple(src.data.shape[1:]) != self.shape:
            # another octave's objective has used the net since
            src.reshape(1, *self.shape)
        src.data[0] = x
        values: List[Optional[float]] = [None] * len(self.objective.terms)
        # f = -objective: the gradient is negated, and so is each weighted value.
        grad = -np.asarray(objective_gradient(self.net, self.objective, values, x), dtype=np.float64)
        self.nfev += 1

        n = len(self.data.terms)
        data = -self.data.total(values[:n])
        terms = {"data": data, "tv": 0.0, "alpha": 0.0}
        total = data
        # with_priors appends tv, then alpha, each only with a positive weight
        names = [k for k, wt in (("tv", self.tv_weight), ("alpha", self.alpha_weight)) if wt > 0]
        for name, (w, _), v in zip(names, self.objective.terms[n:], values[n:]):
            terms[name] = v
            total += -w * v
        terms["total"] = total
        grad = grad.ravel()
        self._recent.append((x, terms, grad))
        del self._recent[:-3]
        return terms["total"], grad.copy()

    def _lookup(self, x: np.ndarray) -> Optional[Tuple[Dict[str, float], np.ndarray]]:
        for seen, terms, grad in reversed(self._recent):
            if np.array_equal(seen, x):
                return terms, grad
        return None

    def terms(self, x: np.ndarray) -> Dict[str, float]:
        """{'data', 'tv', 'alpha', 'total'} at ``x`` (unweighted regulariser values), from cache when possible."""
        x = np.asarray(x, dtype=np.float64).reshape(self.shape)
        hit = self._lookup(x)
        if hit is None:
            self(x)
            hit = self._lookup(x)
        assert hit is not None
        return dict(hit[0])

    def value(self, x: np.ndarray) -> float:
        return self.terms(x)["total"]


def pixel_bounds(net: Any, shape: Tuple[int, int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """(lower, upper) float64 arrays of ``shape``: -mean and 255 - mean per channel."""
    lo, hi = pixel_range(net)
    return (np.broadcast_to(lo.astype(np.float64), shape).copy(),
            np.broadcast_to(hi.astype(np.float64), shape).copy())


def octave_objective(
    net: Any,
    end: str,
    x0: np.ndarray,
    *,
    objective: Union[str, Objective] = DEFAULT_OBJECTIVE,
    gain: float = DEFAULT_GAIN,
    tv_weight: float = DEFAULT_TV_WEIGHT,
    tv_beta: float = DEFAULT_TV_BETA,
    alpha_weight: float = 0.0,
    alpha: float = DEFAULT_ALPHA,
    relative: bool = False,
) -> OctaveObjective:
    """The objective of one octave whose starting input is ``x0`` (CxHxW, net input space).

    ``objective`` is "gain", "l2" (on layer ``end``) or an Objective. For
    the gain objective (or any ``feature_match(..., gain=)`` term) this runs
    the net once on ``x0`` to fix ``enhanced = gain * phi_n(x0)``; the input
    blob is reshaped to x0's size. With ``relative`` the prior weights are
    multiplied by ``S = 0.5 * ||phi(x0)||^2 / x0.size``, phi the objective's
    first layer (one forward pass); the objective's ``prior_scale`` is S.
    """
    cnet = raw_net(net)
    src = input_blob(cnet)
    src.reshape(1, *x0.shape)
    data = bind_start(net, data_objective(objective, end, gain), x0)
    scale = 1.0
    if relative:
        layer = data.layers[0] if data.layers else end
        src.data[0] = x0
        cnet.forward(end=layer)
        phi0 = end_blob(cnet, layer).data[0].astype(np.float64)
        scale = 0.5 * float(np.sum(phi0 * phi0)) / x0.size
        if not scale > 0:
            raise DeepDreamError(f"layer '{layer}' is all zeros on this image, so the relative prior weights "
                                 "have no scale; choose another layer")
    fobj = OctaveObjective(net, data, x0.shape, tv_weight=tv_weight * scale, tv_beta=tv_beta,
                           alpha_weight=alpha_weight * scale, alpha=alpha)
    fobj.prior_scale = scale
    return fobj


def minimize_octave(
    fobj: OctaveObjective,
    x0: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    *,
    maxiter: int = DEFAULT_MAXITER,
    maxfun: Optional[int] = None,
    on_iterate: Optional[Callable[[int, float, np.ndarray], None]] = None,
    first_step: Optional[float] = DEFAULT_FIRST_STEP,
) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Run L-BFGS-B on ``fobj`` from ``x0`` within [lo, hi]; returns (x, record of the run).

    ``on_iterate(iteration, value, x)`` sees each accepted iterate (x flat, float64).
    With every variable boxed, L-BFGS-B's first trial point is ``x0 - g0``,
    whatever the scale of f: on a trained net's layer that moves a pixel by
    a hundredth of a level, and the first iteration is lost. So the
    optimiser sees ``c*f`` with ``c = first_step / mean|g0|``: its first
    trial moves pixels by ``first_step`` levels on average, like a notebook
    ascent step, and the run no longer depends on the scale of f at all
    (``None``: c = 1). Recorded values are those of f itself.
    """
    shape = x0.shape
    x0 = np.clip(np.asarray(x0, dtype=np.float64), lo, hi)
    nfev0 = fobj.nfev
    initial = fobj.terms(x0)
    values = [initial["total"]]
    c = 1.0
    if first_step is not None:
        g0 = np.mean(np.abs(fobj(x0.ravel())[1]))  # already computed: from the objective's cache
        c = first_step / g0 if g0 > 0 else 1.0

    def scaled(x: np.ndarray) -> Tuple[float, np.ndarray]:
        f, g = fobj(x)
        return c * f, c * g

    def cb(xk: np.ndarray, _scaled_value: float) -> None:
        v = fobj.value(xk)  # the iterate's own evaluation, from the cache
        values.append(v)
        if on_iterate is not None:
            on_iterate(len(values) - 2, v, xk)

    res = lbfgsb(scaled if c != 1.0 else fobj, x0.ravel(), lo.ravel(), hi.ravel(), maxiter=maxiter, maxfun=maxfun,
                 callback=cb)
    x = np.asarray(res.x, dtype=np.float64).reshape(shape)
    final = fobj.terms(x)
    record = {
        "size": [int(shape[1]), int(shape[2])],
        "nit": int(res.nit),
        # evaluations of f and its gradient (one forward + backward each), the start included
        "nfev": int(fobj.nfev - nfev0),
        "initial": initial,
        "final": final,
        "values": values,
        "objective_scale": c,  # what the optimiser's f was multiplied by
        "message": str(res.message),
        "converged": bool(res.status == 0),
    }
    return x, record


@dataclass
class LbfgsSolver:
    """L-BFGS-B on each octave (an :class:`~deepdream_caffe.dream.octaves.OctaveSolver`); keeps a record per octave.

    ``data`` is the data term (maximised); ``lbfgs`` gives the priors and the
    iteration bounds (its own data-term settings, objective and gain, are the caller's to turn into ``data``).
    """

    net: Any
    data: Objective
    end: str
    lbfgs: Lbfgs = Lbfgs()
    callback: Optional[IterCallback] = None
    octave_n: int = 1
    first_step: Optional[float] = DEFAULT_FIRST_STEP
    records: List[Dict[str, Any]] = field(default_factory=list)

    def solve(self, octave: int, x0: np.ndarray) -> np.ndarray:
        o = self.lbfgs
        x0 = x0.astype(np.float64)
        lo, hi = pixel_bounds(self.net, x0.shape)
        # Start inside the box: enhanced must be the activation of the point
        # L-BFGS-B actually starts from (it projects x0 onto the bounds).
        x0 = np.clip(x0, lo, hi)
        fobj = octave_objective(self.net, self.end, x0, objective=self.data, relative=True, tv_weight=o.tv_weight,
                                tv_beta=o.tv_beta, alpha_weight=o.alpha_weight, alpha=o.alpha)
        on_iterate = None
        if self.callback is not None:
            callback = self.callback

            def on_iterate(i: int, v: float, x: np.ndarray) -> None:
                callback(LbfgsStepInfo(self.net, octave, self.octave_n, i, o.maxiter, v, x, fobj.shape))

        x, record = minimize_octave(fobj, x0, lo, hi, maxiter=o.maxiter, maxfun=o.maxfun,
                                    on_iterate=on_iterate, first_step=self.first_step)
        record["prior_scale"] = fobj.prior_scale
        record["tv_weight_applied"] = fobj.tv_weight
        record["alpha_weight_applied"] = fobj.alpha_weight
        self.records.append(record)
        return x.astype(np.float32)  # the net's input is float32, and so is the detail carried up


def deepdream_lbfgs(
    net: Any,
    base_img: np.ndarray,
    *,
    end: Optional[str] = None,
    octave_n: int = Octaves.octave_n,
    octave_scale: float = Octaves.octave_scale,
    objective: Union[str, Objective] = DEFAULT_OBJECTIVE,
    gain: float = DEFAULT_GAIN,
    tv_weight: float = DEFAULT_TV_WEIGHT,
    tv_beta: float = DEFAULT_TV_BETA,
    alpha_weight: float = Lbfgs.alpha_weight,
    alpha: float = DEFAULT_ALPHA,
    maxiter: int = DEFAULT_MAXITER,
    maxfun: Optional[int] = None,
    callback: Optional[IterCallback] = None,
    checkpoint: Optional[OctaveCheckpoint] = None,
    first_step: Optional[float] = DEFAULT_FIRST_STEP,
) -> Tuple[np.ndarray, Dict[str, Any]]:
    """Dream on ``base_img`` (HxWx3 RGB) with L-BFGS-B per octave; returns (float32 HxWx3 RGB, info).

    The settings become an :class:`~deepdream_caffe.dream.params.Lbfgs` and an
    :class:`~deepdream_caffe.dream.params.Octaves` for :func:`descend`, which says the rest.
    ``objective`` is "gain" or "l2" on layer ``end``, or an
    :class:`~deepdream_caffe.dream.objectives.Objective` (maximised; ``end``
    and ``gain`` are then unused).
    """
    named = not isinstance(objective, Objective)
    lbfgs = Lbfgs(objective if named else DEFAULT_OBJECTIVE, gain, tv_weight, tv_beta, alpha_weight, alpha,
                  maxiter, maxfun)
    return descend(net, base_img, lbfgs, Octaves(octave_n, octave_scale), end=end,
                   objective=None if named else objective, callback=callback, checkpoint=checkpoint,
                   first_step=first_step)


def descend(
    net: Any,
    base_img: np.ndarray,
    lbfgs: Lbfgs = Lbfgs(),
    octaves: Octaves = Octaves(),
    *,
    end: Optional[str] = None,
    objective: Optional[Objective] = None,
    callback: Optional[IterCallback] = None,
    checkpoint: Optional[OctaveCheckpoint] = None,
    first_step: Optional[float] = DEFAULT_FIRST_STEP,
) -> Tuple[np.ndarray, Dict[str, Any]]:
    """:func:`deepdream_lbfgs` with its settings as objects; returns (float32 HxWx3 RGB, info).

    The objective is in the module docstring: the data term is ``lbfgs.objective``
    ("gain" or "l2") on layer ``end``, or ``objective`` (an Objective, maximised),
    from which the priors are subtracted. ``maxiter`` and ``maxfun`` bound the
    L-BFGS-B iterations and function evaluations per octave (scipy may
    overrun ``maxfun`` to finish an iteration's line search; ``None`` leaves
    scipy's default of 15000). ``tv_weight`` and ``alpha_weight`` are
    relative to the layer scale S, found anew for each octave.
    ``callback(LbfgsStepInfo)`` is called after each accepted iterate
    (octave 0 = smallest); its ``image()`` shows the iterate. ``first_step``
    sets the optimiser's scale (see :func:`minimize_octave`). ``checkpoint``
    resumes after the last finished octave, as in the ascent mode. ``info``
    holds the objective, its expression, its settings, and per octave run
    (smallest first) the initial and final term values, the value after
    each iteration, ``nit`` and ``nfev`` (forward + backward passes; the
    forward pass that fixes ``enhanced`` is not counted); it is JSON-able.
    There is no randomness: the same inputs give the same image.
    """
    check_arguments(net=net, base_img=base_img, lbfgs=lbfgs, octaves=octaves, end=end, objective=objective,
                    callback=callback, checkpoint=checkpoint, first_step=first_step)
    o = lbfgs
    octave_n, octave_scale = octaves.octave_n, octaves.octave_scale
    if objective is not None:
        end = end if end is not None else (getattr(net, "end", None) or nb.DEFAULT_LAYER)
    else:
        end = resolve_end(net, end, nb.DEFAULT_LAYER)  # None: the layer load_net cut the net after
    base_img = as_image_array(base_img, "base_img")
    check_net_finite(net)
    data = data_objective(o.objective if objective is None else objective, end, o.gain)
    check_objective(net, data)
    data.check_has_value()
    h, w = base_img.shape[:2]
    sh, sw = octave_sizes(h, w, octave_n, octave_scale)[-1]
    for layer in data.layers:
        check_spatial_layer(net, layer, h, w)
        check_spatial_layer(net, layer, sh, sw)

    solver = LbfgsSolver(net, data, end, o, callback, octave_n, first_step)
    pyramid = octave_pyramid(preprocess(net, base_img), octave_n, octave_scale)
    result = run_octaves(net, pyramid, solver, checkpoint)
    records = solver.records
    named = objective is None
    full = with_priors(data, o.tv_weight, o.tv_beta, o.alpha_weight, o.alpha)
    info: Dict[str, Any] = {
        "objective": o.objective if named else "expression",
        "formula": FORMULAS[o.objective] if named else f"-({full!r})",
        "expression": repr(full),  # maximised; f(X) = -expression
        "regularizers": dict(REGULARIZER_FORMULAS),
        "layer": end if named else list(data.layers),
        "gain": o.gain if named and o.objective == "gain" else None,
        "tv_weight": o.tv_weight,
        "tv_beta": o.tv_beta,
        "alpha_weight": o.alpha_weight,
        "alpha": o.alpha,
        "maxiter": o.maxiter,
        "maxfun": o.maxfun,
        "first_step": None if first_step is None else float(first_step),
        "weights_relative_to": "S = 0.5*||phi_n(X0)||^2/(C*H*W) per octave",
        "octave_n": octave_n,
        "octave_scale": octave_scale,
        "octaves": records,  # smallest first; on a resumed run, the octaves run now
        "final": dict(records[-1]["final"]) if records else None,
        "nfev": int(sum(r["nfev"] for r in records)),
        "nit": int(sum(r["nit"] for r in records)),
    }
    return deprocess(net, result), info


def plain_ascent(
    fobj: OctaveObjective,
    x0: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    steps: int,
    step_size: float = Ascent.step_size,
) -> Tuple[np.ndarray, List[float]]:
    """The ascent mode's normalised step on the same objective, for comparison with L-BFGS.

    ``steps`` descent steps ``x -= step_size / mean|g| * g`` (the notebook's
    update, without jitter so the objective stays fixed), clipped to the
    bounds as the ascent mode clips. Uses ``steps`` gradient evaluations and
    returns (x, objective values: at x0, then after each step, the last one
    costing one more evaluation).
    """
    x = np.clip(np.asarray(x0, dtype=np.float64), lo, hi)
    f, g = fobj(x)
    values = [f]
    for _ in range(steps):
        if not np.any(g):
            break
        ascent_update(x, -g.reshape(x.shape), step_size)  # ascent on -f
        x = np.clip(x, lo, hi)
        f, g = fobj(x)
        values.append(f)
    return x, values
