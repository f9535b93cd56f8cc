"""What a dream maximises: objectives that add, subtract and scale, in the spirit of lucid's.

**Sign convention.** An :class:`Objective` is a quantity to *maximise*.
The ascent mode climbs its gradient; the L-BFGS mode minimises its
negative, ``f(X) = -objective(X)``. A penalty is therefore subtracted:
``L2(l) - 50*tv(2)``, and the L-BFGS data term ``0.5*||phi - target||^2``
(a distance, to be made small) enters as ``-feature_match(l, target)``.

An objective is a weighted sum of terms. Each term belongs to one Caffe
*layer* (the name ``forward(end=)`` takes; its first top blob is read where
the forward pass stops at that layer, so a layer followed by an in-place
ReLU is seen before the ReLU, as in the notebook) or to the net's input,
:data:`INPUT`. A term knows its value and its gradient with respect to its
layer's output. Values are plain sums (as the notebook's L2 is), not the
means lucid takes.

    L2(layer)                 0.5 * ||a||^2                      (the notebook's objective_L2)
    channel(layer, c)         sum over positions of a[c]
    neuron(layer, c, y, x)    a[c, y, x]  (the centre by default)
    class_score(layer, k)     a[k], the pre-softmax score of class k
    class_logprob(layer, k)   log softmax(a)[k], the log posterior of class k
    guide(layer, y)           sum over positions p of max_j <a_p, y_j>  (the notebook's objective_guide)
    feature_match(layer, t)   0.5 * ||a - t||^2, t fixed or gain * a at the octave's start
    tv(beta), alpha_norm(a)   the image priors of :mod:`priors`, on the input
    L2(INPUT) / input_l2()    0.5 * ||X||^2 of the input (mean subtracted, 0..255 scale)

``repr`` gives the expression (``L2('inception_4c/output') + 2*channel(...)``)
and :func:`parse_objective` reads it back; array arguments (guide
features, a fixed target) appear as names bound when parsing.

A plain function that writes ``dst.diff`` (the notebook's contract) is still
accepted wherever an objective is; :func:`as_objective` wraps it.
"""
from __future__ import annotations

import ast
import math
import numbers
import operator
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import DeepDreamError
from .defaults import DEFAULT_LAYER
from .priors import alpha_norm as _alpha_norm
from .priors import tv_norm as _tv_norm

INPUT = "input"  # the layer name of terms on the image itself

DiffWriter = Callable[[Any], None]  # the notebook's objective: sets dst.diff from dst.data


# ---------------------------------------------------------------- the notebook's callables


def objective_L2(dst: Any) -> None:  # noqa: N802 - the notebook's name
    """Maximise 0.5 * ||a||^2 of the activations: its gradient is a itself."""
    dst.diff[:] = dst.data


def guide_match(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """For each position of ``x`` (C x N), the column of ``y`` (C x M) with the largest dot product.

    Returns a C x N array. Ties go to the first column, as ``argmax`` does.
    """
    a = x.T.dot(y)
    return y[:, a.argmax(1)]


def objective_guide(guide_features: np.ndarray) -> DiffWriter:
    """The notebook's guided objective for features of a guide image (C x h x w at the end layer).

    Each position of the current activations is pulled towards the guide
    feature vector it already resembles most (largest dot product).
    """
    return _GuideTerm("", np.asarray(guide_features)).set_diff


# ---------------------------------------------------------------- terms


def _num(v: float) -> str:
    s = repr(float(v))
    return s[:-2] if s.endswith(".0") else s


class Term:
    """One differentiable quantity at one layer. ``a`` is the layer's blob data (1 x C x ...)
    for net layers and the C x H x W image for :data:`INPUT`."""

    layer: str
    has_value = True  # False for a plain diff-writing function

    # A term defines value and grad, or value_and_grad when the two share their work.
    def value(self, a: np.ndarray) -> Optional[float]:
        return self.value_and_grad(a)[0]

    def grad(self, a: np.ndarray) -> np.ndarray:
        """d value / d a, shaped like ``a``."""
        return self.value_and_grad(a)[1]

    def value_and_grad(self, a: np.ndarray) -> Tuple[Optional[float], np.ndarray]:
        return self.value(a), self.grad(a)

    def set_diff(self, blob: Any) -> None:
        """``blob.diff = d value / d blob.data``."""
        blob.diff[...] = self.grad(blob.data)

    def check(self, shape: Tuple[int, ...]) -> None:
        """Raise a one-line DeepDreamError unless the term fits a layer output of ``shape``."""

    def needs_start(self) -> bool:
        """Whether the term is fixed by the activations at the octave's start (see :meth:`bind`)."""
        return False

    def bind(self, start: np.ndarray) -> "Term":
        return self

    def expr(self) -> str:
        raise NotImplementedError


def _check_index(kind: str, layer: str, i: int, shape: Tuple[int, ...]) -> None:
    if len(shape) < 2 or not 0 <= i < shape[1]:
        n = shape[1] if len(shape) >= 2 else 0
        raise DeepDreamError(f"{kind} {i} is out of range for layer '{layer}' ({n} channels: 0..{n - 1})")


@dataclass(frozen=True, eq=False)
class _L2Term(Term):
    layer: str

    def value(self, a: np.ndarray) -> float:
        p = a.astype(np.float64)
        return 0.5 * float(np.sum(p * p))

    def grad(self, a: np.ndarray) -> np.ndarray:
        return a

    def set_diff(self, blob: Any) -> None:
        objective_L2(blob)  # the notebook's own line: same bits

    def expr(self) -> str:
        return f"L2({self.layer!r})"


@dataclass(frozen=True, eq=False)
class _IndexedTerm(Term):
    """The sum of ``a[0, c, ...]``: a whole channel (or class score), or with ``y, x`` one neuron."""

    layer: str
    c: int
    kind: str = "channel"  # "channel", "class_score" or "neuron"
    y: Optional[int] = None
    x: Optional[int] = None

    def _index(self, shape: Tuple[int, ...]) -> Tuple[int, ...]:
        self.check(shape)
        if self.kind != "neuron":
            return (0, self.c)
        spatial = shape[2:]
        if len(spatial) not in (0, 2):
            raise DeepDreamError(f"neuron: layer '{self.layer}' output has shape {shape}, not 1xC or 1xCxHxW")
        if not spatial:
            if self.y is not None or self.x is not None:
                raise DeepDreamError(f"neuron: layer '{self.layer}' has no spatial extent; give no y, x")
            return (0, self.c)
        h, w = spatial
        y = h // 2 if self.y is None else self.y
        x = w // 2 if self.x is None else self.x
        if not (0 <= y < h and 0 <= x < w):
            raise DeepDreamError(f"neuron: position ({y}, {x}) is outside layer '{self.layer}' ({h}x{w} here)")
        return (0, self.c, y, x)

    def value(self, a: np.ndarray) -> float:
        return float(np.sum(a[self._index(a.shape)], dtype=np.float64))

    def grad(self, a: np.ndarray) -> np.ndarray:
        g = np.zeros_like(a)
        g[self._index(a.shape)] = 1
        return g

    def check(self, shape: Tuple[int, ...]) -> None:
        _check_index("channel" if self.kind == "neuron" else self.kind, self.layer, self.c, shape)

    def expr(self) -> str:
        pos = "" if self.y is None and self.x is None else f", {self.y!r}, {self.x!r}"
        return f"{self.kind}({self.layer!r}, {self.c}{pos})"


@dataclass(frozen=True, eq=False)
class _LogSoftmaxTerm(Term):
    """log softmax(a)[k] over the scores a[0, :]: climbing it raises class k *and* lowers the others."""

    layer: str
    k: int

    def value_and_grad(self, a: np.ndarray) -> Tuple[float, np.ndarray]:
        self.check(a.shape)
        z = a[0].astype(np.float64).ravel()
        top = z.max()
        e = np.exp(z - top)
        total = e.sum()
        g = -(e / total)
        g[self.k] += 1.0  # d log p_k / d z = onehot(k) - softmax(z)
        return float(z[self.k] - top - np.log(total)), g.reshape(a.shape[1:])[None].astype(a.dtype)

    def check(self, shape: Tuple[int, ...]) -> None:
        _check_index("class_logprob", self.layer, self.k, shape)
        if any(d != 1 for d in shape[2:]):
            raise DeepDreamError(f"class_logprob: layer '{self.layer}' has {shape[1:]} outputs, not one score "
                                 "per class")

    def expr(self) -> str:
        return f"class_logprob({self.layer!r}, {self.k})"


@dataclass(frozen=True, eq=False)
class _GuideTerm(Term):
    layer: str
    features: np.ndarray = field(repr=False)
    name: str = "guide_features"

    def _xy(self, a: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        ch = self.features.shape[0]
        return a[0].copy().reshape(ch, -1), self.features.reshape(ch, -1)

    def value(self, a: np.ndarray) -> float:
        x, y = self._xy(a)
        return float((x.astype(np.float64).T @ y.astype(np.float64)).max(axis=1).sum())

    def grad(self, a: np.ndarray) -> np.ndarray:
        x, y = self._xy(a)
        g = np.empty_like(a)
        g[0].reshape(x.shape[0], -1)[:] = guide_match(x, y)
        return g

    def set_diff(self, dst: Any) -> None:
        # The notebook's objective_guide, line for line.
        ch = self.features.shape[0]
        x = dst.data[0].copy().reshape(ch, -1)
        dst.diff[0].reshape(ch, -1)[:] = guide_match(x, self.features.reshape(ch, -1))

    def check(self, shape: Tuple[int, ...]) -> None:
        if len(shape) < 2 or shape[1] != self.features.shape[0]:
            raise DeepDreamError(
                f"guide features have {self.features.shape[0]} channels but layer '{self.layer}' "
                f"has {shape[1] if len(shape) > 1 else 0}; compute them at that layer"
            )

    def expr(self) -> str:
        return f"guide({self.layer!r}, {self.name})"


@dataclass(frozen=True, eq=False)
class _FeatureMatchTerm(Term):
    layer: str
    target: Optional[np.ndarray] = field(default=None, repr=False)  # float64, the layer's C x ... shape
    gain: Optional[float] = None  # target = gain * activations at the octave's start
    name: str = "target"

    def _residual(self, a: np.ndarray) -> np.ndarray:
        if self.target is None:
            raise DeepDreamError(
                f"feature_match('{self.layer}', gain=...) is fixed at each octave's start; "
                "only deepdream and deepdream_lbfgs bind it"
            )
        if self.target.shape != a.shape[1:]:
            raise DeepDreamError(
                f"feature_match: the target of layer '{self.layer}' is {'x'.join(map(str, self.target.shape))} "
                f"but the layer gives {'x'.join(map(str, a.shape[1:]))} (a target fits one image size, not tiles)"
            )
        return a[0].astype(np.float64) - self.target

    def value(self, a: np.ndarray) -> float:
        r = self._residual(a)
        return 0.5 * float(np.sum(r * r))

    def grad(self, a: np.ndarray) -> np.ndarray:
        return self._residual(a)[None]

    def set_diff(self, blob: Any) -> None:
        blob.diff[0] = self._residual(blob.data)

    def needs_start(self) -> bool:
        return self.target is None

    def bind(self, start: np.ndarray) -> Term:
        if self.target is not None:
            return self
        return _FeatureMatchTerm(self.layer, self.gain * start[0].astype(np.float64), self.gain, self.name)

    def expr(self) -> str:
        if self.gain is not None:
            return f"feature_match({self.layer!r}, gain={_num(self.gain)})"
        return f"feature_match({self.layer!r}, {self.name})"


@dataclass(frozen=True, eq=False)
class _PriorTerm(Term):
    kind: str  # "tv" or "alpha_norm"
    exponent: float
    layer: str = INPUT

    def value_and_grad(self, x: np.ndarray) -> Tuple[float, np.ndarray]:
        fn = _tv_norm if self.kind == "tv" else _alpha_norm
        return fn(x, self.exponent)

    def expr(self) -> str:
        return f"{self.kind}({_num(self.exponent)})"


@dataclass(frozen=True, eq=False)
class _CustomTerm(Term):
    """A notebook-style function that writes ``dst.diff``; it has a gradient but no known value."""

    layer: str
    fn: DiffWriter
    has_value = False

    def value(self, a: np.ndarray) -> None:
        return None

    def set_diff(self, blob: Any) -> None:
        self.fn(blob)

    def expr(self) -> str:
        return f"custom({self.layer!r}, {getattr(self.fn, '__name__', 'fn')})"


# ---------------------------------------------------------------- the objective


Weighted = Tuple[float, Term]


class Objective:
    """A weighted sum of terms, to maximise. Supports ``+``, ``-``, unary ``-``, ``scalar*`` and ``/scalar``."""

    __slots__ = ("terms",)

    def __init__(self, terms: Iterable[Weighted]) -> None:
        self.terms: Tuple[Weighted, ...] = tuple((float(w), t) for w, t in terms)

    # -- algebra
    def __add__(self, other: Any) -> "Objective":
        if isinstance(other, Objective):
            return Objective(self.terms + other.terms)
        if isinstance(other, numbers.Real) and other == 0:
            return self  # sum([...]) starts from 0
        return NotImplemented

    __radd__ = __add__

    def __neg__(self) -> "Objective":
        return Objective((-w, t) for w, t in self.terms)

    def __pos__(self) -> "Objective":
        return self

    def __sub__(self, other: Any) -> "Objective":
        if isinstance(other, Objective):
            return self + (-other)
        return NotImplemented

    def __mul__(self, k: Any) -> "Objective":
        if isinstance(k, numbers.Real) and not isinstance(k, bool):
            if not math.isfinite(k):
                raise ValueError(f"an objective's weight must be finite, got {k}")
            return Objective((k * w, t) for w, t in self.terms)
        return NotImplemented

    __rmul__ = __mul__

    def __truediv__(self, k: Any) -> "Objective":
        if isinstance(k, numbers.Real) and not isinstance(k, bool):
            return self * (1.0 / k)
        return NotImplemented

    # -- structure
    @property
    def layers(self) -> Tuple[str, ...]:
        """The net layers the terms read, first mention first (the input excluded)."""
        seen: Dict[str, None] = {}
        for _, t in self.terms:
            if t.layer != INPUT:
                seen.setdefault(t.layer, None)
        return tuple(seen)

    def at(self, layer: str) -> List[Tuple[int, float, Term]]:
        """(index, weight, term) of the terms on ``layer``."""
        return [(i, w, t) for i, (w, t) in enumerate(self.terms) if t.layer == layer]

    def needs_start(self) -> Tuple[str, ...]:
        """Layers whose activations at the octave's start fix a term (``feature_match(l, gain=)``)."""
        return tuple(dict.fromkeys(t.layer for _, t in self.terms if t.needs_start()))

    def bind(self, start: Mapping[str, np.ndarray]) -> "Objective":
        """A copy with start-dependent terms fixed from ``start`` (layer -> its blob data)."""
        return Objective((w, t.bind(start[t.layer]) if t.needs_start() else t) for w, t in self.terms)

    def write_diff(self, layer: str, blob: Any, values: Optional[List[Optional[float]]] = None) -> None:
        """``blob.diff = sum of weight * d term / d blob.data`` over the terms on ``layer``.

        The first term writes the diff with its own code (for a weight-1 L2
        or guide term that is the notebook's line, so the same bits); the
        others are added. ``values[i]`` receives term i's unweighted value.
        """
        terms = self.at(layer)
        if not terms:
            raise ValueError(f"no term of the objective is on layer '{layer}'")
        if values is not None:
            for i, _, t in terms:
                values[i] = t.value(blob.data)
        (_, w0, t0), rest = terms[0], terms[1:]
        t0.set_diff(blob)
        if w0 != 1.0:
            blob.diff[...] *= w0
        for _, w, t in rest:
            if isinstance(t, _CustomTerm):  # its gradient exists only as a diff it writes
                keep = blob.diff.copy()
                t.set_diff(blob)
                keep += w * blob.diff
                blob.diff[...] = keep
            else:
                blob.diff[...] += w * t.grad(blob.data)

    def __call__(self, dst: Any) -> None:
        """The notebook's contract, for an objective on one layer: write its gradient into ``dst.diff``."""
        layers = self.layers
        if len(layers) != 1 or self.at(INPUT):
            raise ValueError(f"only an objective on one layer can be used as a diff writer: {self!r}")
        self.write_diff(layers[0], dst)

    def check_has_value(self) -> None:
        """Raise a one-line DeepDreamError if a term is a plain function with a gradient but no value."""
        for _, t in self.terms:
            if not t.has_value:
                raise DeepDreamError(f"the objective has no value: {t.expr()} only writes a gradient "
                                     "(L-BFGS needs values; use L2, channel, guide, ...)")

    def total(self, values: Sequence[Optional[float]]) -> float:
        """sum of weight * value, from the per-term values ``write_diff`` and friends record."""
        self.check_has_value()
        return float(sum(w * v for (w, _), v in zip(self.terms, values)))  # type: ignore[operator]

    def __repr__(self) -> str:
        if not self.terms:
            return "0"
        out = []
        for i, (w, t) in enumerate(self.terms):
            sign = "-" if w < 0 else "+"
            mag = abs(w)
            body = t.expr() if mag == 1 else f"{_num(mag)}*{t.expr()}"
            if i == 0:
                out.append(("-" if sign == "-" else "") + body)
            else:
                out.append(f" {sign} {body}")
        return "".join(out)


ObjectiveLike = Union[Objective, DiffWriter, None]


def _one(term: Term) -> Objective:
    return Objective(((1.0, term),))


def _layer_name(layer: Any) -> str:
    if not isinstance(layer, str) or not layer:
        raise TypeError(f"a layer is named by a non-empty string, got {layer!r}")
    return layer


def _index(i: Any, what: str) -> int:
    if isinstance(i, bool) or not isinstance(i, numbers.Integral) or i < 0:
        raise DeepDreamError(f"{what} must be a whole number >= 0, got {i!r}")
    return int(i)


# ---------------------------------------------------------------- constructors


def L2(layer: str = DEFAULT_LAYER) -> Objective:  # noqa: N802 - lucid's and the notebook's name
    """0.5 * ||a||^2 of ``layer``'s output (the notebook's objective); ``L2(INPUT)`` is the image's."""
    return _one(_L2Term(_layer_name(layer)))


def input_l2() -> Objective:
    """0.5 * ||X||^2 of the input (mean subtracted, 0..255 scale): subtract it to keep pixels small."""
    return L2(INPUT)


def channel(layer: str, c: int) -> Objective:
    """The sum over positions of channel ``c`` of ``layer``'s output."""
    return _one(_IndexedTerm(_layer_name(layer), _index(c, "channel")))


def neuron(layer: str, c: int, y: Optional[int] = None, x: Optional[int] = None) -> Objective:
    """One activation: channel ``c`` at (``y``, ``x``), by default the centre of the layer's map."""
    return _one(_IndexedTerm(_layer_name(layer), _index(c, "channel"), "neuron",
                             None if y is None else _index(y, "y"), None if x is None else _index(x, "x")))


def class_score(layer: str, k: int) -> Objective:
    """The pre-softmax score of class ``k`` at a classifier layer (e.g. GoogLeNet's ``loss3/classifier``)."""
    return _one(_IndexedTerm(_layer_name(layer), _index(k, "class"), "class_score"))


def class_logprob(layer: str, k: int) -> Objective:
    """log softmax(scores)[k] at a classifier layer: the log posterior of class ``k``.

    Simonyan et al. climb the pre-softmax score instead, because the
    posterior also rises when the other classes fall; this is the quantity
    Nguyen, Yosinski and Clune (2015) drive to confident "fooling" images.
    """
    return _one(_LogSoftmaxTerm(_layer_name(layer), _index(k, "class")))


def guide(layer: str, features: np.ndarray, name: str = "guide_features") -> Objective:
    """The notebook's guided objective at ``layer`` for a guide image's features there (C x h x w).

    Its value is the sum over positions of the largest dot product with a
    guide feature vector; its gradient is that vector (``objective_guide``).
    ``name`` stands for the array in the expression.
    """
    y = np.asarray(features)
    if y.ndim < 1:
        raise DeepDreamError("guide features must be an array C x h x w")
    return _one(_GuideTerm(_layer_name(layer), y, name))


def feature_match(layer: str, target: Optional[np.ndarray] = None, *, gain: Optional[float] = None,
                  name: str = "target") -> Objective:
    """0.5 * ||a - target||^2 at ``layer``: a distance, so *subtract* it from what is maximised.

    ``target`` is a fixed array shaped like the layer's output (C x ...), or,
    with ``gain`` instead, ``gain`` times the layer's activations at the
    start of each octave (the L-BFGS mode's "gain" data term).
    """
    if (target is None) == (gain is None):
        raise ValueError("feature_match takes a target array or gain=, one of the two")
    if gain is not None:
        if not (isinstance(gain, numbers.Real) and math.isfinite(gain) and gain > 0):
            raise DeepDreamError(f"gain must be a positive number, got {gain!r}")
        return _one(_FeatureMatchTerm(_layer_name(layer), None, float(gain), name))
    return _one(_FeatureMatchTerm(_layer_name(layer), np.asarray(target, dtype=np.float64), None, name))


def tv(beta: float = 2.0) -> Objective:
    """The beta-TV of the input (:func:`priors.tv_norm`): subtract it for smoother images."""
    if not (isinstance(beta, numbers.Real) and beta >= 1):
        raise DeepDreamError(f"tv beta must be >= 1, got {beta!r}")
    return _one(_PriorTerm("tv", float(beta)))


def alpha_norm(alpha: float = 6.0) -> Objective:
    """The alpha-norm of the input (:func:`priors.alpha_norm`): subtract it to keep pixels in range."""
    if not (isinstance(alpha, numbers.Real) and alpha >= 1):
        raise DeepDreamError(f"alpha must be >= 1, got {alpha!r}")
    return _one(_PriorTerm("alpha_norm", float(alpha)))


def custom(layer: str, fn: DiffWriter) -> Objective:
    """A notebook-style ``fn(dst)`` that writes ``dst.diff`` for ``layer``, as an objective (no value)."""
    return _one(_CustomTerm(_layer_name(layer), fn))


def as_objective(objective: ObjectiveLike, end: str = DEFAULT_LAYER) -> Objective:
    """``objective`` as an :class:`Objective`: ``None`` or ``objective_L2`` -> ``L2(end)``, a plain
    diff-writing function -> that function on ``end``."""
    if objective is None or objective is objective_L2:
        return L2(end)
    if isinstance(objective, Objective):
        return objective
    term = getattr(objective, "__self__", None)
    if isinstance(term, _GuideTerm) and getattr(objective, "__func__", None) is _GuideTerm.set_diff:
        return guide(end, term.features)  # objective_guide(features): known, so it has a value too
    if callable(objective):
        return custom(end, objective)
    raise TypeError(f"an objective is an Objective or a function of the end blob, got {type(objective).__name__}")


# ---------------------------------------------------------------- reading an expression back

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}

ArrayResolver = Union[Mapping[str, np.ndarray], Callable[[str, str], np.ndarray]]


@dataclass(frozen=True)
class _NamedArray:
    """An array argument of an expression and the name it was written with."""

    value: np.ndarray
    name: str


def _guide_from(layer: str, features: Any, name: Optional[str] = None) -> Objective:
    if isinstance(features, _NamedArray):
        return guide(layer, features.value, name or features.name)
    return guide(layer, features, name or "guide_features")


def _match_from(layer: str, target: Any = None, *, gain: Optional[float] = None, name: Optional[str] = None) -> Objective:
    if isinstance(target, _NamedArray):
        return feature_match(layer, target.value, name=name or target.name)
    return feature_match(layer, target, gain=gain, name=name or "target")


_CONSTRUCTORS: Dict[str, Callable[..., Objective]] = {
    "L2": L2, "input_l2": input_l2, "channel": channel, "neuron": neuron, "class_score": class_score,
    "class_logprob": class_logprob,
    "guide": _guide_from, "feature_match": _match_from, "tv": tv, "alpha_norm": alpha_norm,
}
_ARRAY_TAKERS = ("guide", "feature_match")


def parse_objective(text: str, arrays: Optional[ArrayResolver] = None) -> Objective:
    """The objective an expression (as ``repr`` writes it) stands for.

    Only the constructors above, numbers, strings, ``+ - * /`` and
    parentheses are read; nothing is evaluated. A bare name in an array
    argument (``guide('l', guide_features)``) is looked up in ``arrays``: a
    mapping name -> array, or a function ``(name, layer) -> array``.
    Raises a one-line DeepDreamError on anything else.
    """
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise _bad(text, e.msg) from None
    result = _eval(tree.body, text, arrays)
    if not isinstance(result, Objective):
        raise _bad(text, "it is not an objective")
    return result


def _bad(text: str, why: str) -> DeepDreamError:
    return DeepDreamError(f"cannot read the objective {text!r}: {why}")


def _eval(node: ast.AST, text: str, arrays: Optional[ArrayResolver], array_ok: bool = False) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Name) and array_ok:
        return _NamedArray(np.asarray(_lookup(arrays, node.id, text)), node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _eval(node.operand, text, arrays)
        return -v if isinstance(node.op, ast.USub) else +v
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        a, b = _eval(node.left, text, arrays), _eval(node.right, text, arrays)
        try:
            return _OPS[type(node.op)](a, b)
        except (TypeError, ValueError, ZeroDivisionError) as e:
            raise _bad(text, str(e)) from None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CONSTRUCTORS:
        fname = node.func.id
        takes = fname in _ARRAY_TAKERS
        if any(k.arg is None for k in node.keywords):
            raise _bad(text, "no **kwargs")
        args = [_eval(a, text, _Layered(arrays, node), takes and i == 1) for i, a in enumerate(node.args)]
        kwargs = {k.arg: _eval(k.value, text, _Layered(arrays, node), takes and k.arg in ("features", "target"))
                  for k in node.keywords}
        try:
            return _CONSTRUCTORS[fname](*args, **kwargs)
        except (TypeError, ValueError) as e:
            raise _bad(text, str(e)) from None
    raise _bad(text, f"'{ast.unparse(node)}' is not an objective, a number or a layer name")


class _Layered:
    """The array resolver of one call, knowing the call's layer for ``(name, layer)`` resolvers."""

    def __init__(self, arrays: Optional[ArrayResolver], call: ast.Call) -> None:
        self.arrays = arrays
        first = call.args[0] if call.args else None
        self.layer = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else ""


def _lookup(arrays: Any, name: str, text: str) -> Any:
    layer = ""
    if isinstance(arrays, _Layered):
        arrays, layer = arrays.arrays, arrays.layer
    if arrays is None:
        raise _bad(text, f"'{name}' stands for an array; pass it in arrays=")
    try:
        return arrays(name, layer) if callable(arrays) else arrays[name]
    except KeyError:
        raise _bad(text, f"no array named '{name}' was given") from None
