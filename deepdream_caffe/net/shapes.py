"""The net as Caffe would build and reshape it, worked out from the prototxt alone.

:func:`plan_net` walks the layers the way ``Net::Init`` does at the
prototxt's own input size: blob wiring, blob counts, every parameter Caffe
CHECKs (see :mod:`layer_rules`), learnable blob shapes and shared
parameters. :meth:`Plan.walk` then reshapes that net to another input size
as pycaffe's ``reshape``/``forward(end=)`` would. Anything Caffe would abort
on, divide by zero over or overrun a buffer for is found here first, so it
becomes one clear line instead of a dead process. Also used to find the
smallest image a layer accepts and to count a net's multiply-adds.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from .layer_rules import (
    INT_MAX,
    MAX_AXES,
    RULES,
    FixedSize,
    Mismatch,
    NetError,
    Setup,
    Shape,
    ShapeError,
    TooLarge,
    TooSmall,
    blob_count_problem,
    check_count,
    count,
    finite_problem,
)

__all__ = [
    "FixedSize", "Mismatch", "NetError", "Plan", "ShapeError", "TooLarge", "TooSmall", "fits", "has_spatial_extent",
    "layer_shapes", "plan_net", "smallest_side",
]

INPUT_LAYER = "input"  # the name Caffe gives the Input layer it makes from `input:` fields


@dataclass
class Step:
    """One layer of the walk: where it sits, what it reads and writes."""

    pos: int  # position in the walk: the `input:` declaration (if any) first, then param.layer
    index: Optional[int]  # index in param.layer (None for the `input:` declaration)
    layer: Any
    name: str
    type: str
    bottoms: List[str]
    tops: List[str]


@dataclass
class Info:
    """A layer's output shapes at one input size (None: unknown, after a Python layer)."""

    tops: Optional[List[Shape]]
    macs: int = 0


@dataclass
class Plan:
    """The net as built at its own input size, and the first layer that could not be."""

    steps: List[Step]
    native: Optional[Tuple[int, int]]  # the prototxt's input H, W
    channels: Optional[int]
    setups: Dict[int, Setup] = field(default_factory=dict)
    built: Dict[int, Info] = field(default_factory=dict)  # shapes at the native size
    problem: Optional[Tuple[int, NetError]] = None  # (pos, error) of the first layer Caffe would abort on
    python_layers: List[str] = field(default_factory=list)

    def pos_of(self, layer_name: Optional[str]) -> int:
        """Position of layer ``layer_name`` in the walk (the last one if None)."""
        if layer_name is None:
            return len(self.steps) - 1
        for s in self.steps:
            if s.name == layer_name:
                return s.pos
        raise NetError(f"unknown layer '{layer_name}'")

    def raise_problem(self, upto: Optional[str] = None) -> None:
        """Raise the first problem of the layers Caffe builds when the net is cut after ``upto``.

        An unknown ``upto`` counts as the whole net (the caller names the
        unknown layer with better hints).
        """
        try:
            last = self.pos_of(upto)
        except NetError:
            last = len(self.steps) - 1
        if self.problem is not None and self.problem[0] <= last:
            raise self.problem[1]

    def param_counts(self) -> Dict[str, int]:
        """Layer name -> number of learnable blobs Caffe gives it (layers the plan could set up)."""
        return {s.name: len(self.setups[s.pos].params) for s in self.steps if s.pos in self.setups}

    def walk(self, height: int, width: int, upto: Optional[str] = None) -> Tuple[Dict[int, Info], Optional[Tuple[int, ShapeError]]]:
        """Reshape the built net to a ``height`` x ``width`` input, up to layer ``upto``.

        Returns each layer's shapes by position, and the first layer (with the
        ShapeError kind) Caffe would refuse at this size, if any.
        """
        self.raise_problem(upto)
        last = self.pos_of(upto)
        if self.native is None:
            raise NetError("the net's first input is not N x C x H x W")
        blobs: Dict[str, Optional[Shape]] = {}
        infos: Dict[int, Info] = {}
        first_input = True
        values = biggest = 0
        counted: set = set()
        for s in self.steps[: last + 1]:
            if s.type == "Input":
                tops = list(self.built[s.pos].tops or [])
                if first_input and tops:
                    # the dream reshapes only the first input blob; the others keep their shapes
                    tops[0] = (1, self.channels, height, width)
                    first_input = False
                info = Info(tops)
            elif s.pos not in self.setups:  # a Python layer (allowed): its shapes are its own business
                info = Info(None)
            else:
                bshapes = [blobs.get(b) for b in s.bottoms]
                if any(b is None for b in bshapes):
                    info = Info(None)
                else:
                    try:
                        r = RULES[s.type].reshape(s.layer, self.setups[s.pos], bshapes)  # type: ignore[arg-type]
                        _check_outputs(s, r.tops, r.buffers)
                    except ShapeError as e:
                        return infos, (s.pos, type(e)(f"layer '{s.name}' ({s.type}): {e}"))
                    except NetError as e:
                        return infos, (s.pos, Mismatch(f"layer '{s.name}' ({s.type}): {e}"))
                    info = Info(r.tops, r.macs)
                    # Scratch buffers: only the largest is counted (this build's convolutions share
                    # one column buffer), so a run is refused only when it surely cannot fit.
                    biggest = max([biggest] + [count(b) for b in r.buffers])
            for t, shape in zip(s.tops, info.tops or [None] * len(s.tops)):
                blobs[t] = shape
                if shape is not None and t not in counted:
                    counted.add(t)
                    values += 2 * count(shape)  # data and diff
            infos[s.pos] = info
            limit = memory_limit()
            if limit and (values + biggest) * 4 > limit:
                err = TooLarge(
                    f"up to layer '{s.name}' Caffe would need about {(values + biggest) * 4 / 2**30:.1f} GiB for a {width}x{height} "
                    f"input; this machine has {limit / 2**30:.1f} GiB"
                )
                return infos, (s.pos, err)
        return infos, None


def _check_outputs(s: Step, tops: List[Shape], buffers: List[Shape]) -> None:
    if len(tops) != len(s.tops):
        raise NetError(f"makes {len(tops)} outputs but names {len(s.tops)}")
    for name, shape in zip(s.tops, tops):
        if len(shape) > MAX_AXES:
            raise NetError(f"output '{name}' would have {len(shape)} axes {shape}; at most {MAX_AXES} are supported")
        if any(d <= 0 for d in shape):
            raise TooSmall(f"output '{name}' would be empty {shape}")
        check_count(shape, f"output '{name}'")
    for b in buffers:
        check_count(b, "a scratch buffer")


def _steps(param: Any) -> List[Step]:
    steps: List[Step] = []
    if param.input:
        steps.append(Step(0, None, None, INPUT_LAYER, "Input", [], list(param.input)))
    for i, layer in enumerate(param.layer):
        steps.append(Step(len(steps), i, layer, layer.name, layer.type, list(layer.bottom), list(layer.top)))
    return steps


def _net_input_shapes(param: Any) -> List[Shape]:
    """Shapes of the `input:` declarations, checked as UpgradeNetInput reads them."""
    n = len(param.input)
    if param.input_shape:
        if len(param.input_shape) < n:
            raise NetError(f"{n} input: names but only {len(param.input_shape)} input_shape entries")
        dims = [[int(d) for d in param.input_shape[i].dim] for i in range(n)]
    elif param.input_dim:
        if len(param.input_dim) < 4 * n:
            raise NetError(f"{n} input: names need {4 * n} input_dim values, got {len(param.input_dim)}")
        dims = [[int(d) for d in param.input_dim[4 * i : 4 * i + 4]] for i in range(n)]
    else:
        raise NetError(f"input '{param.input[0]}' has no dims (input_shape {{ dim: ... }} or input_dim)")
    for name, d in zip(param.input, dims):
        if not 1 <= len(d) <= MAX_AXES or any(not 1 <= x <= INT_MAX for x in d):
            raise NetError(f"input '{name}' has shape {d}; it needs 1 to {MAX_AXES} positive dims")
        check_count(d, f"input '{name}'")
    return [tuple(d) for d in dims]


def _cache_key(param: Any, allow_python: bool) -> str:
    return hashlib.sha1(param.SerializeToString(deterministic=True)).hexdigest() + str(allow_python)


_PLANS: Dict[str, Plan] = {}


def plan_net(param: Any, *, allow_python: bool = False, known_types: Optional[frozenset] = None) -> Plan:
    """Build the net on paper, at the prototxt's own input size, as ``Net::Init`` would (see module doc).

    Never raises for a bad net: the first problem is kept in ``Plan.problem``
    (layers before it stay usable, as Caffe only builds up to the end layer).
    """
    key = _cache_key(param, allow_python) + str(hash(known_types))
    if key in _PLANS:
        return _PLANS[key]
    plan = _plan(param, allow_python, known_types)
    if len(_PLANS) > 16:
        _PLANS.clear()
    _PLANS[key] = plan
    return plan


def _plan(param: Any, allow_python: bool, known_types: Optional[frozenset]) -> Plan:
    steps = _steps(param)
    plan = Plan(steps=steps, native=None, channels=None)
    blobs: Dict[str, Optional[Shape]] = {}
    layer_names: set = set()
    shared: Dict[str, Tuple[str, Shape, Any]] = {}

    def fail(s: Step, msg: str) -> Plan:
        plan.problem = (s.pos, NetError(f"layer '{s.name}' ({s.type}): {msg}"))
        return plan

    renamed, split_tops = _splits(steps)
    split_names: set = set()
    for s in steps:
        layer = s.layer
        if s.name in layer_names:
            return fail(s, "another layer has the same name; layer names must be unique")
        layer_names.add(s.name)
        if layer is not None:
            problem = _generic_problem(layer)
            if problem:
                return fail(s, problem)
        for b in s.bottoms:
            if b not in blobs:
                return fail(s, f"reads blob '{b}' that no earlier layer makes")
        for i, t in enumerate(s.tops):
            in_place = i < len(s.bottoms) and renamed[s.pos][i] == t
            if i < len(s.bottoms) and s.bottoms[i] == t and not in_place:
                return fail(s, f"works in place on '{t}', which other layers read too; Caffe cannot do that "
                               "(give its output a name of its own)")
            if t in split_names:
                return fail(s, f"writes blob '{t}', a name Caffe gives the copies it makes of a shared blob")
            if in_place:
                rule = RULES.get(s.type)
                if rule is not None and not rule.in_place:
                    return fail(s, f"cannot work in place (top '{t}' is also its bottom)")
                if t in _input_blobs(steps, s.pos):
                    return fail(s, f"would overwrite the net's input '{t}' in place; dreaming needs the input unchanged")
            elif t in blobs or t in s.tops[:i]:
                return fail(s, f"writes blob '{t}' that another layer (or input) already makes")
        if known_types is not None and s.type not in known_types:
            return fail(s, f"has type '{s.type}', unknown to this Caffe")
        if s.type == "Python":
            plan.python_layers.append(s.name)
            if not allow_python:
                return fail(s, "is a Python layer, which would import and run code named by the prototxt; "
                               "refused unless Python layers are allowed explicitly")
            for t in s.tops:
                blobs[t] = None
            continue
        rule = RULES.get(s.type)
        if rule is None:
            return fail(s, f"type '{s.type}' has no check in this tool (so Caffe could abort on it); supported: "
                           f"{', '.join(sorted(RULES))}")
        problem = blob_count_problem(rule, layer) if layer is not None else None
        if problem:
            return fail(s, problem)
        try:
            bshapes = [blobs[b] for b in s.bottoms]
            if any(b is None for b in bshapes):
                plan.setups[s.pos] = Setup()
                for t in s.tops:
                    blobs[t] = None
                continue
            for name, shape in zip(s.bottoms, bshapes):
                if len(shape) > MAX_AXES:  # type: ignore[arg-type]
                    return fail(s, f"input '{name}' has {len(shape)} axes; at most {MAX_AXES} are supported")  # type: ignore[arg-type]
            if layer is None:
                tops = _net_input_shapes(param)
                setup = Setup(state={"shapes": tops})
                r_tops, macs = tops, 0
            elif s.type == "Input":
                setup = RULES["Input"].setup(layer, bshapes)  # type: ignore[arg-type]
                r_tops, macs = setup.state["shapes"], 0
            else:
                setup = RULES[s.type].setup(layer, bshapes)  # type: ignore[arg-type]
                for shape in setup.params:
                    check_count(shape, "a learnable blob")
                r = RULES[s.type].reshape(layer, setup, bshapes)  # type: ignore[arg-type]
                _check_outputs(s, r.tops, r.buffers)
                r_tops, macs = r.tops, r.macs
                problem = _param_spec_problem(s, setup, shared)
                if problem:
                    return fail(s, problem)
        except (NetError, ShapeError) as e:
            return fail(s, str(e))
        if s.type == "Input" and plan.native is None and r_tops:
            r_tops = _batch_one(s, r_tops)
            first = r_tops[0]
            if len(first) != 4:
                return fail(s, f"the net's first input '{s.tops[0]}' has shape {list(first)}; dreaming needs N x C x H x W")
            plan.native, plan.channels = (first[2], first[3]), first[1]
        plan.setups[s.pos] = setup
        plan.built[s.pos] = Info(list(r_tops), macs)
        for t, shape in zip(s.tops, r_tops):
            blobs[t] = shape
        for t in split_tops.get(s.pos, []):
            if t in blobs or t in split_names:
                return fail(s, f"Caffe would copy a shared output to '{t}', a name already taken")
            split_names.add(t)
    if plan.native is None and plan.problem is None:
        plan.problem = (0, NetError("the prototxt declares no input (input: or an Input layer)"))
    return plan


def _splits(steps: List[Step]) -> Tuple[Dict[int, List[str]], Dict[int, List[str]]]:
    """Caffe's InsertSplits: a top read by several bottoms (or used as a loss too) goes through a Split layer.

    Returns, by position, each layer's bottoms as renamed to the Split's
    copies, and the copies a layer's tops get. Caffe checks the wiring of
    the renamed net, so an in-place layer on a shared blob, or a blob named
    like one of the copies, is a fatal error there.
    """
    last_top: Dict[str, Tuple[int, int]] = {}
    source: Dict[Tuple[int, int], Tuple[int, int]] = {}
    uses: Dict[Tuple[int, int], int] = {}
    for s in steps:
        for j, b in enumerate(s.bottoms):
            if b in last_top:
                source[(s.pos, j)] = last_top[b]
                uses[last_top[b]] = uses.get(last_top[b], 0) + 1
        for j, t in enumerate(s.tops):
            last_top[t] = (s.pos, j)
        weights = list(s.layer.loss_weight) if s.layer is not None else []
        for j in range(min(len(weights), len(s.tops))):
            if weights[j]:
                top = last_top[s.tops[j]]
                uses[top] = uses.get(top, 0) + 1
    renamed: Dict[int, List[str]] = {}
    copies: Dict[int, List[str]] = {}
    taken: Dict[Tuple[int, int], int] = {}
    for s in steps:
        names = list(s.bottoms)
        for j, b in enumerate(s.bottoms):
            src = source.get((s.pos, j))
            if src is not None and uses[src] > 1:
                k = taken.get(src, 0)
                taken[src] = k + 1
                names[j] = f"{b}_{steps[src[0]].name}_{src[1]}_split_{k}"
        renamed[s.pos] = names
        for j, t in enumerate(s.tops):
            n = uses.get((s.pos, j), 0)
            if n > 1:
                copies.setdefault(s.pos, []).extend(f"{t}_{s.name}_{j}_split_{k}" for k in range(n))
    return renamed, copies


def _batch_one(s: Step, tops: List[Shape]) -> List[Shape]:
    """The input shapes once prototxt.set_batch_one has made the first one batch 1 (as the dream builds it)."""
    shared = s.layer is not None and len(s.layer.input_param.shape) == 1
    return [(1,) + tuple(t[1:]) if (i == 0 or shared) else t for i, t in enumerate(tops)]


def _input_blobs(steps: List[Step], upto: int) -> set:
    return {t for s in steps[:upto] if s.type == "Input" for t in s.tops}


def _generic_problem(layer: Any) -> Optional[str]:
    """What Net::Init checks for every layer, whatever its type."""
    if layer.blobs:
        return "carries weights inside the prototxt (blobs {}); put them in the caffemodel"
    if layer.include and layer.exclude:
        return "has both include and exclude rules"
    if layer.propagate_down and len(layer.propagate_down) != len(layer.bottom):
        return f"has {len(layer.propagate_down)} propagate_down entries for {len(layer.bottom)} bottoms"
    if layer.loss_weight and len(layer.loss_weight) != len(layer.top):
        return f"has {len(layer.loss_weight)} loss_weight entries for {len(layer.top)} tops"
    if any(not t for t in layer.top) or any(not b for b in layer.bottom):
        return "has an empty blob name"
    return finite_problem(layer)


def _param_spec_problem(s: Step, setup: Setup, shared: Dict[str, Tuple[str, Shape, Any]]) -> Optional[str]:
    """net.cpp: no more param {} than blobs; a shared (named) param must fit its owner's blob."""
    specs = list(s.layer.param)
    if len(specs) > len(setup.params):
        return f"has {len(specs)} param {{}} entries but only {len(setup.params)} learnable blobs"
    for spec, shape in zip(specs, setup.params):
        if not spec.name:
            continue
        if spec.name not in shared:
            shared[spec.name] = (s.name, shape, spec)
            continue
        owner, owner_shape, owner_spec = shared[spec.name]
        permissive = spec.share_mode == spec.PERMISSIVE
        if (count(shape) != count(owner_shape)) if permissive else (shape != owner_shape):
            return f"shares param '{spec.name}' with layer '{owner}' but its blob is {shape}, the owner's {owner_shape}"
        for attr in ("lr_mult", "decay_mult"):
            if spec.HasField(attr):
                if owner_spec.HasField(attr) and getattr(spec, attr) != getattr(owner_spec, attr):
                    return f"shares param '{spec.name}' with layer '{owner}' but with another {attr}"
    return None


_MEMORY: List[int] = []


def memory_limit() -> int:
    """Bytes of RAM plus swap: a net needing more could only fail inside Caffe (a CHECK on malloc, or the OOM killer)."""
    if not _MEMORY:
        total = 0
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    key, _, rest = line.partition(":")
                    if key in ("MemTotal", "SwapTotal"):
                        total += int(rest.split()[0]) * 1024
        except (OSError, ValueError, IndexError):
            total = 0
        _MEMORY.append(total)
    return _MEMORY[0]


# ---------------------------------------------------------------- the questions the rest of the package asks


def layer_shapes(param: Any, height: int, width: int, upto: Optional[str] = None) -> Dict[str, Dict[str, Any]]:
    """For each layer (in order, up to ``upto``): its top shapes and multiply-adds at ``height`` x ``width``.

    Raises :class:`NetError` for a net Caffe could not build and a
    :class:`ShapeError` kind where Caffe would refuse the size.
    """
    plan = plan_net(param, allow_python=True)
    infos, problem = plan.walk(height, width, upto)
    if problem is not None:
        raise problem[1]
    out: Dict[str, Dict[str, Any]] = {}
    for s in plan.steps:
        if s.pos in infos and infos[s.pos].tops is not None:
            out[s.name] = {"tops": infos[s.pos].tops, "macs": infos[s.pos].macs}
    return out


def has_spatial_extent(shape: Shape) -> bool:
    return len(shape) == 4 and shape[2] >= 1 and shape[3] >= 1 and (shape[2] > 1 or shape[3] > 1)


# The size questions take Python layers as given: whether they may run at all is
# decided once, when the net is loaded (prototxt.check_structure).


def size_problem(param: Any, height: int, width: int, end: Optional[str]) -> Optional[ShapeError]:
    """Why Caffe would refuse a ``height`` x ``width`` input up to ``end`` (None: it would not).

    Raises NetError for a net Caffe could not build at all.
    """
    _, problem = plan_net(param, allow_python=True).walk(height, width, end)
    return None if problem is None else problem[1]


def fits(param: Any, height: int, width: int, end: Optional[str]) -> bool:
    return size_problem(param, height, width, end) is None


def native_size(param: Any) -> Optional[Tuple[int, int]]:
    """The prototxt's own input height and width (the size the net is built at)."""
    return plan_net(param, allow_python=True).native


def smallest_side(param: Any, end: str, aspect: float = 1.0, limit: int = 4096) -> int:
    """Smallest height (width = height * aspect) the net accepts up to ``end``."""

    def ok(hh: int) -> bool:
        p = size_problem(param, hh, max(1, int(round(hh * aspect))), end)
        return p is None or not isinstance(p, TooSmall)

    lo, hi = 1, limit
    if not ok(hi):
        return limit
    while lo < hi:  # being too small is monotone in the size
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


# ---------------------------------------------------------------- the `layers` listing


@dataclass
class Row:
    """One line of the `layers` listing."""

    name: str
    type: str
    tops: Optional[List[Shape]]  # at the asked size; None where unknown
    dream: str  # "yes", or why not: input, no-output, fixed-size, too-small, too-large, mismatch, broken, unchecked


_KIND = {FixedSize: "fixed-size", TooSmall: "too-small", TooLarge: "too-large", Mismatch: "mismatch"}


def layer_table(param: Any, height: int, width: int, *, allow_python: bool = False,
                known_types: Optional[frozenset] = None) -> Tuple[List[Row], List[Tuple[str, str, str]]]:
    """Every layer with its output shapes at ``height`` x ``width`` and whether it can be dreamed on there.

    Caffe builds a net cut after the dream layer from all the layers before
    it, so the first layer that cannot be built (or reshaped to this size)
    rules out itself and every layer after it. Returns the rows and, for
    each reason that occurs, (reason, first layer, explanation).
    """
    plan = plan_net(param, allow_python=allow_python, known_types=known_types)
    broken = plan.problem[0] if plan.problem is not None else None
    notes: List[Tuple[str, str, str]] = []
    infos: Dict[int, Info] = {}
    size_at: Optional[int] = None
    size_kind = ""
    if plan.native is not None and broken != 0:
        upto = plan.steps[broken - 1].name if broken is not None else None
        infos, sp = plan.walk(height, width, upto)
        if sp is not None:
            size_at, size_kind = sp[0], _KIND.get(type(sp[1]), "mismatch")
            detail = str(sp[1])
            if size_kind == "fixed-size":
                nh, nw = plan.native
                detail = (f"classifier (fixed-size) layers: they work only at the net's own input size {nw}x{nh}, "
                          f"not {width}x{height} ({detail})")
            notes.append((size_kind, plan.steps[sp[0]].name, detail))
    if plan.problem is not None:
        notes.append(("broken", plan.steps[broken].name, str(plan.problem[1])))
    rows = []
    for s in plan.steps:
        info = infos.get(s.pos)
        tops = info.tops if info is not None else None
        if broken is not None and s.pos >= broken:
            why = "broken"
        elif s.type == "Input":
            why = "input"
        elif size_at is not None and s.pos >= size_at:
            why, tops = size_kind, None
        elif not s.tops:
            why = "no-output"
        elif tops is None:
            why = "unchecked"
        else:
            why = "yes"
        rows.append(Row(s.name, s.type, tops, why))
    return rows, notes
