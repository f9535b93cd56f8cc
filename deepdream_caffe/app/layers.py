"""The net's layers, their output shapes for an input size, and which can be dreamed on there: no weights needed."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, List, Optional, Tuple

from ..errors import DeepDreamError
from ..net.classifier import fixed_size_layer, native_size
from ..net.prototxt import input_names, read_prototxt
from ..net.referee import (
    FixedSize,
    Mismatch,
    NetError,
    TooLarge,
    TooSmall,
    build,
    check_runs,
    policy_refusal,
    size_problem,
)
from .netspec import NetSource, resolve_net


@dataclass(frozen=True)
class LayerRow:
    """One layer: name, Caffe type, output shapes (CxHxW per top; None if not known) and ``dream``.

    ``dream`` is "yes" when ``--layer NAME`` works at this size, else why
    not: input, no-output, fixed-size (a classifier: only the net's own
    input size), too-small, too-large, mismatch (shapes that do not meet at
    this size), broken (Caffe could not build it or a layer before it), or
    unchecked (after a Python layer, whose shapes are its own business).
    ``default`` marks the layer a run takes without ``--layer`` (the model's).
    """

    name: str
    type: str
    shapes: Optional[Tuple[Tuple[int, ...], ...]]
    dream: str = "yes"
    default: bool = False


@dataclass(frozen=True)
class LayerNote:
    """Why a run of layers cannot be dreamed on: the reason, the first layer it starts at, the details."""

    reason: str
    layer: str
    detail: str


def layer_table(source: NetSource, h: int, w: int, quiet: bool = True) -> Tuple[List[LayerRow], List[LayerNote]]:
    """Every layer of ``source``'s prototxt at an ``h`` x ``w`` input (no weights needed).

    Caffe builds the net in a child process (see
    :mod:`deepdream_caffe.net.referee`); a net cut after the dream layer
    holds every layer before it, so the first layer Caffe cannot build,
    reshape to this size or run rules out itself and every layer after it.
    """
    spec = resolve_net(source, need_weights=False, quiet=quiet)
    param = read_prototxt(spec.prototxt)
    rows, notes = _table(param, h, w, source.allow_python_layers)
    rows = [replace(r, default=True) if r.name == spec.default_layer else r for r in _classifiers(param, rows, h, w)]
    if not any(n.reason == "fixed-size" for n in notes):
        notes += _classifier_note(param, rows, h, w)
    return rows, notes


_KIND = {FixedSize: "fixed-size", TooSmall: "too-small", TooLarge: "too-large", Mismatch: "mismatch"}


def _table(param: Any, h: int, w: int, allow_python: bool) -> Tuple[List[LayerRow], List[LayerNote]]:
    declared = [("input", "Input", tuple(param.input))] if param.input else []
    steps = declared + [(lp.name, lp.type, tuple(lp.top)) for lp in param.layer]

    def pos(layer: Optional[str]) -> int:
        return next((i for i, s in enumerate(steps) if s[0] == layer), 0)

    broken = unchecked = len(steps)
    broke: List[LayerNote] = []
    inputs = input_names(param)
    for lp in param.layer:  # what Caffe is not given: from there on, broken (or unchecked: allowed Python)
        refusal = policy_refusal(lp, allow_python, inputs)
        if refusal:
            broken = pos(lp.name)
            broke = [LayerNote("broken", lp.name, refusal)]
            break
        if lp.type == "Python":
            unchecked = pos(lp.name)
            break
    built, stop = None, min(broken, unchecked)
    while built is None and stop > len(declared):  # a layer to build; else the net is its declared input
        last = steps[stop - 1][0]
        try:
            built = build(param, last, [(h, w)])
            check_runs(param, last)
        except NetError as e:
            stop = broken = pos(e.layer)
            broke = [LayerNote("broken", steps[stop][0], str(e))]
    notes, shapes, failed, kind = broke, {}, len(steps), ""
    if built is not None:
        shapes = built.shapes_at((h, w))
        problem = size_problem(param, h, w, last)
        if problem is not None:
            kind = _KIND[type(problem)]
            failed = pos(problem.layer) if problem.layer else len(declared)
            detail = str(problem)
            if kind == "fixed-size":
                nh, nw = built.native
                detail = (f"classifier (fixed-size) layers: they work only at the net's own input size {nw}x{nh}, "
                          f"not {w}x{h} ({detail})")
            notes = [LayerNote(kind, steps[failed][0], detail)] + notes
    rows = []
    for i, (name, type_, tops) in enumerate(steps):
        out = tuple(tuple(int(d) for d in shapes[t][1:]) for t in tops) if all(t in shapes for t in tops) else None
        if i >= broken:
            why = "broken"
        elif type_ == "Input":
            why = "input"
        elif i >= unchecked:
            why, out = "unchecked", None
        elif i >= failed:
            why, out = kind, None
        else:
            why = "no-output" if not tops else "yes"
        rows.append(LayerRow(name, type_, out, why))
    return rows, notes


def _classifiers(param, rows: List[LayerRow], h: int, w: int) -> List[LayerRow]:
    """Layers that depend on an InnerProduct are classifier layers: only the native size (as ``dream`` decides)."""
    try:
        if (h, w) == native_size(param):
            return rows
    except DeepDreamError:  # no N x C x H x W input: the rows already say the net is broken
        return rows
    return [replace(r, dream="fixed-size") if r.dream == "yes" and fixed_size_layer(param, r.name) else r
            for r in rows]


def _classifier_note(param, rows: List[LayerRow], h: int, w: int) -> List[LayerNote]:
    first = next((r.name for r in rows if r.dream == "fixed-size"), None)
    ip = fixed_size_layer(param, first) if first else None
    if ip is None:
        return []
    nh, nw = native_size(param)  # known to work: _classifiers marked the rows with it
    return [LayerNote("fixed-size", first, f"classifier layers (fixed-size): they depend on the InnerProduct '{ip}' "
                                          f"and take only the net's own {nw}x{nh} input, not {w}x{h}")]
