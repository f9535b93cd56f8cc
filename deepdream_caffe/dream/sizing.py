"""Whether an image (and each of its octaves) is big enough for the chosen layer."""
from __future__ import annotations

from typing import Any, Optional, Tuple

from ..errors import DeepDreamError
from .octaves import octave_sizes
from ..net.classifier import fixed_size_layer, fixed_size_refusal, native_size
from ..net.shapes import fits, smallest_side


def fit_octaves(param: Any, end: str, h: int, w: int, octave_n: int, octave_scale: float) -> Tuple[int, Optional[str]]:
    """The number of octaves to use: ``octave_n``, or fewer if the smallest would be too small for ``end``.

    Caffe dies (CHECK failure) on a blob that pooling leaves empty, so this
    is settled from the prototxt before Caffe sees the size. Returns the
    count and a note to show when it had to shrink; raises if even the
    full-size image is too small. A classifier layer (one that depends on an
    InnerProduct) takes only the net's native size: another size is refused
    with a line pointing at ``visualize``, and at the native size it gets one
    octave (smaller octaves are other sizes).
    """
    ip = fixed_size_layer(param, end)
    if ip is not None:
        native = native_size(param)
        if (h, w) != native:
            raise fixed_size_refusal(end, ip, native, h, w)
        if octave_n > 1:
            return 1, (f"using 1 octave instead of {octave_n}: '{end}' is a classifier layer and takes only "
                       f"{w}x{h}")
        return 1, None
    if not fits(param, h, w, end):
        side = smallest_side(param, end, aspect=w / h)
        raise DeepDreamError(
            f"a {w}x{h} image is too small for layer '{end}': it needs at least about "
            f"{max(1, round(side * w / h))}x{side} pixels"
        )
    n = octave_n
    while n > 1:
        sh, sw = octave_sizes(h, w, n, octave_scale)[-1]
        if fits(param, sh, sw, end):
            break
        n -= 1
    note = None
    if n < octave_n:
        sh, sw = octave_sizes(h, w, n, octave_scale)[-1]
        note = f"using {n} octaves instead of {octave_n}: a smaller octave would be too small for '{end}' (smallest now {sw}x{sh})"
    return n, note


def check_octaves_fit(net: Any, end: str, h: int, w: int, octave_n: int, octave_scale: float) -> None:
    """For a net from ``load_net`` (which keeps its NetParameter): raise unless every octave fits ``end``.

    Caffe aborts the process on a layer output that pooling leaves empty;
    this settles it from the prototxt first. A bare pycaffe net has no
    prototxt to ask and is not checked.
    """
    param = getattr(net, "param", None)
    if param is None:
        return
    n, _ = fit_octaves(param, end, h, w, octave_n, octave_scale)
    if n < octave_n:
        sh, sw = octave_sizes(h, w, octave_n, octave_scale)[-1]
        raise DeepDreamError(
            f"with octave_n={octave_n} the smallest octave is {sw}x{sh}, too small for layer '{end}'; "
            f"octave_n={n} fits this {w}x{h} image"
        )
