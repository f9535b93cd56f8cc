"""Whether an image (and each of its octaves) can go through the net up to the chosen layer."""
from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

from ..errors import DeepDreamError
from ..net.classifier import fixed_size_layer, fixed_size_refusal, native_size
from ..net.referee import (
    FixedSize,
    Mismatch,
    ShapeError,
    TooLarge,
    build,
    size_problem,
    size_problems,
    smallest_side,
)
from .octaves import octave_sizes, shrink_limit, shrinking_sizes

VISUALIZE_HINT = "`deepdream-caffe visualize` is the tool for class images"

# (height, width) of the smallest and the largest input the net is reshaped to for an image of that size
RunExtents = Callable[[int, int], Tuple[Tuple[int, int], Tuple[int, int]]]


def _whole(h: int, w: int) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    return (h, w), (h, w)


def tile_extents(policy: Any) -> RunExtents:
    """The input sizes a :class:`~deepdream_caffe.dream.tiling.TilePolicy` runs for an image.

    A tiled step runs tiles with their margins: an edge cell can be a single
    pixel plus one margin, an inner one the tile plus two.
    """

    def extents(h: int, w: int) -> Tuple[Tuple[int, int], Tuple[int, int]]:
        if not policy.active(h, w):
            return (h, w), (h, w)

        def span(n: int) -> Tuple[int, int]:
            if n <= policy.tile:
                return n, n
            return min(n, policy.margin + 1), min(n, policy.tile + 2 * policy.margin)

        (hl, hh), (wl, wh) = span(h), span(w)
        return (hl, wl), (hh, wh)

    return extents


def run_problem(param: Any, end: str, h: int, w: int, extents: RunExtents = _whole) -> Optional[ShapeError]:
    """Why Caffe would refuse the inputs an ``h`` x ``w`` image makes the net run (None: it would not)."""
    small, large = extents(h, w)
    problems = size_problems(param, end, [small, large])
    return problems[small] or problems[large]


def explain(param: Any, end: str, h: int, w: int, problem: ShapeError) -> str:
    """One line: why an ``h`` x ``w`` image cannot be dreamed at ``end`` and what would work."""
    native = native_size(param)
    nat = f"{native[1]}x{native[0]}"
    side = None
    if not isinstance(problem, (FixedSize, TooLarge, Mismatch)):
        # Too small: but would the size that is big enough work? Not for a classifier.
        side = smallest_side(param, end, aspect=w / h)
        bigger = size_problem(param, side, max(1, round(side * w / h)), end)
        if isinstance(bigger, FixedSize):
            problem = bigger
    if isinstance(problem, FixedSize):
        return (
            f"layer '{end}' is a classifier layer (fixed-size): it takes only the net's {nat} input, not {w}x{h} "
            f"({problem}); for the image of a class use `deepdream-caffe visualize --class K --layer {end}`"
        )
    if isinstance(problem, TooLarge):
        return f"a {w}x{h} image is too large for layer '{end}': {problem}; use a smaller image or tiles"
    if isinstance(problem, Mismatch):
        return f"a {w}x{h} image does not fit layer '{end}': {problem}; the net's own input size {nat} does"
    return (
        f"a {w}x{h} image is too small for layer '{end}': it needs at least about "
        f"{max(1, round(side * w / h))}x{side} pixels ({problem})"
    )


def fit_octaves(
    param: Any,
    end: str,
    h: int,
    w: int,
    octave_n: int,
    octave_scale: float,
    extents: RunExtents = _whole,
) -> Tuple[int, Optional[str]]:
    """The number of octaves to use: ``octave_n``, or fewer if the smallest would not go through ``end``.

    Caffe dies (CHECK failure) on a blob that pooling leaves empty, on an
    InnerProduct fed another size than it was built for, and more, so
    Caffe is asked in a child process first, for every size at once (see
    :mod:`deepdream_caffe.net.referee`). ``extents`` gives the sizes the net really
    runs for an image (tiles, see :func:`tile_extents`). Returns the count
    and a note to show when it had to shrink; raises if even the full-size
    image cannot go through.

    A classifier layer (one that depends on an InnerProduct) takes only the
    net's native size: another size is refused with a line pointing at
    ``visualize``, and at the native size it gets one octave (smaller octaves
    are other sizes).
    """
    ip = fixed_size_layer(param, end)
    if ip is not None:
        native = native_size(param)
        if (h, w) != native:
            raise fixed_size_refusal(end, ip, native, h, w)
        if run_problem(param, end, h, w, extents) is None:
            if octave_n > 1:
                return 1, (f"using 1 octave instead of {octave_n}: '{end}' is a classifier layer and takes only "
                           f"{w}x{h}")
            return 1, None
    sizes = shrinking_sizes(h, w, octave_n, octave_scale)
    build(param, end, [s for hw in sizes for s in extents(*hw)])  # every size in one child request
    problem = run_problem(param, end, h, w, extents)
    if problem is not None:
        raise DeepDreamError(explain(param, end, h, w, problem))
    n = len(sizes)
    while n > 1 and run_problem(param, end, *sizes[n - 1], extents) is not None:
        n -= 1
    note = None
    if n < octave_n:
        sh, sw = sizes[n - 1]
        if n == len(sizes):
            reason = shrink_limit(sizes, octave_scale).split(";")[0]
            note = f"using {n} octaves instead of {octave_n}: {reason} (smallest now {sw}x{sh})"
        else:
            why = run_problem(param, end, *sizes[n], extents)
            reason = ("not the net's own input size" if isinstance(why, FixedSize)
                      else "too large" if isinstance(why, TooLarge) else "refused by a layer"
                      if isinstance(why, Mismatch) else "too small")
            note = (f"using {n} octaves instead of {octave_n}: a smaller octave would be {reason} for '{end}' "
                    f"(smallest now {sw}x{sh})")
    return n, note


def check_size_fits(param: Any, end: str, h: int, w: int) -> None:
    """Raise :func:`explain`'s line unless Caffe would run an ``h`` x ``w`` input to ``end`` (asked in a child
    process: Caffe aborts on a layer output that pooling leaves empty)."""
    problem = run_problem(param, end, h, w)
    if problem is not None:
        raise DeepDreamError(explain(param, end, h, w, problem))


def check_octaves_fit(net: Any, end: str, h: int, w: int, octave_n: int, octave_scale: float) -> None:
    """For a net from ``load_net`` (which keeps its NetParameter): raise unless every octave fits ``end``.

    Caffe aborts the process on a layer output that pooling leaves empty;
    this asks Caffe in a child process first. A bare pycaffe net has no
    prototxt to ask: only the arithmetic is checked (each octave smaller than the last, none empty).
    """
    param = getattr(net, "param", None)
    if param is None:
        octave_sizes(h, w, octave_n, octave_scale)  # still: no more octaves than the image can shrink to
        return
    n, _ = fit_octaves(param, end, h, w, octave_n, octave_scale)
    if n < octave_n:
        sizes = shrinking_sizes(h, w, n + 1, octave_scale)
        if len(sizes) <= n:
            octave_sizes(h, w, octave_n, octave_scale)  # raises: the image cannot shrink again
        sh, sw = sizes[-1]
        raise DeepDreamError(
            f"with octave_n={octave_n} octave {n + 1} is {sw}x{sh}, too small for layer '{end}'; "
            f"octave_n={n} fits this {w}x{h} image"
        )
