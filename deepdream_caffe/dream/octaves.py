"""The octave pyramid and the detail carried from one octave to the next."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Protocol, Tuple

import numpy as np
import scipy.ndimage as nd

from ..errors import DeepDreamError
from ..net.access import net_lock, raw_net, reserve_input
from .checks import check_image_finite


def zoom_planes(img: np.ndarray, fy: float, fx: float) -> np.ndarray:
    """``nd.zoom(img, (1, fy, fx), order=1)`` for a CxHxW image, bit for bit, one plane per thread.

    scipy interpolates a 3-D array over 2x2x2 neighbours. With a zoom of 1
    along the channel axis the channel weights are exactly 1 and 0, and the
    zero-weighted neighbours come last in scipy's sum, which starts at +0.0
    and so cannot be changed by adding zeros. The 3-D result is therefore
    the 2-D zoom of each plane, which scipy computes about twice as fast,
    and with the GIL released, so planes run side by side.
    """
    c, h, w = img.shape
    # scipy's own output size: round(size * factor); it rejects an ``output`` of any other shape.
    out = np.empty((c, int(round(h * fy)), int(round(w * fx))), dtype=img.dtype)

    def plane(i: int) -> None:
        nd.zoom(img[i], (fy, fx), output=out[i], order=1)

    with ThreadPoolExecutor(max(1, min(c, os.cpu_count() or 1))) as pool:
        list(pool.map(plane, range(c)))
    return out


def octave_pyramid(base: np.ndarray, octave_n: int, octave_scale: float) -> List[np.ndarray]:
    """``octave_n`` CxHxW images, the given one first, each 1/octave_scale of the one before."""
    octave_sizes(*base.shape[-2:], octave_n, octave_scale)  # refuses, before any is made, what cannot shrink
    octaves = [base]
    for _ in range(octave_n - 1):
        octaves.append(zoom_planes(octaves[-1], 1.0 / octave_scale, 1.0 / octave_scale))
    return octaves


def shrinking_sizes(h: int, w: int, octave_n: int, octave_scale: float) -> List[Tuple[int, int]]:
    """(height, width) of the first octaves, largest first, exactly as zoom computes them: at most
    ``octave_n``, ending before an octave that would be empty or no smaller than the one before (every
    later one would be that size too). Each kept octave is smaller, so there are at most h + w of them."""
    sizes = [(h, w)]
    f = 1.0 / octave_scale
    while len(sizes) < octave_n:
        nh, nw = int(round(h * f)), int(round(w * f))  # zoom's own rounding: round(size * factor)
        if nh < 1 or nw < 1 or (nh, nw) == (h, w):
            break
        h, w = nh, nw
        sizes.append((h, w))
    return sizes


def octave_sizes(h: int, w: int, octave_n: int, octave_scale: float) -> List[Tuple[int, int]]:
    """(height, width) of each octave, largest first; raises if the image cannot shrink ``octave_n`` times."""
    sizes = shrinking_sizes(h, w, octave_n, octave_scale)
    if len(sizes) < octave_n:
        raise DeepDreamError(f"octave_n={octave_n} is too many for a {w}x{h} image: {shrink_limit(sizes, octave_scale)}")
    return sizes


def shrink_limit(sizes: List[Tuple[int, int]], octave_scale: float) -> str:
    """Why the octaves stop after ``sizes`` (from :func:`shrinking_sizes`), and how many there can be."""
    h, w = sizes[-1]
    nh, nw = int(round(h / octave_scale)), int(round(w / octave_scale))
    what = "empty" if nh < 1 or nw < 1 else f"no smaller than {w}x{h}"
    return (f"with octave_scale {octave_scale} octave {len(sizes) + 1} would be {what}; "
            f"at most {len(sizes)} octave{'s' if len(sizes) > 1 else ''}")


def upscale_detail(detail: np.ndarray, h: int, w: int) -> np.ndarray:
    h1, w1 = detail.shape[-2:]
    return zoom_planes(detail, 1.0 * h / h1, 1.0 * w / w1)


class OctaveSolver(Protocol):
    """A mode's work on one octave: from the starting input ``x0`` (CxHxW, float32) to its result.

    The result may be a view of the net's input blob; it is copied before the net runs again.
    """

    def solve(self, octave: int, x0: np.ndarray) -> np.ndarray: ...


class OctaveCheckpoint(Protocol):
    """Somewhere to keep the input at the end of each octave, so a long run can resume."""

    def load(self, shapes: List[Tuple[int, ...]]) -> Optional[Tuple[int, np.ndarray]]:
        """(last octave done, its final input) for octaves of these shapes (smallest first), or None."""

    def save(self, octave: int, data: np.ndarray) -> None: ...


def run_octaves(net, octaves: List[np.ndarray], solver: OctaveSolver,
                checkpoint: Optional[OctaveCheckpoint] = None, reserve: bool = False) -> np.ndarray:
    """Smallest octave first: ``x = solver.solve(i, base + detail)``, then the new detail ``x - base``.

    Returns the final input (CxHxW, preprocessed space) of the largest
    octave. With a ``checkpoint``, octaves it has already seen are skipped
    and the detail is rebuilt from the saved input exactly as it was
    computed then. ``reserve`` sizes the net for the largest octave before
    the first (for solvers that run the whole image through the net; tiled
    steps must not).
    """
    if reserve:
        with net_lock(net):
            reserve_input(raw_net(net), *octaves[0].shape[-2:])
    bases = octaves[::-1]
    detail = np.zeros_like(octaves[-1])
    start = 0
    resumed = checkpoint.load([b.shape for b in bases]) if checkpoint is not None else None
    if resumed is not None:
        done, data = resumed
        if not 0 <= done < len(bases) or data.shape != bases[done].shape:
            raise DeepDreamError(f"the checkpoint gave octave {done} with shape {data.shape}, "
                                 f"which this {len(bases)}-octave run does not have")
        if done == len(bases) - 1:
            return data.copy()
        detail = data - bases[done]
        start = done + 1
    x = bases[0]
    for i, octave_base in enumerate(bases):
        if i < start:
            continue
        h, w = octave_base.shape[-2:]
        if i > 0:
            detail = upscale_detail(detail, h, w)
        x0 = octave_base + detail
        check_image_finite(x0, i, len(bases))  # nothing non-finite may reach Caffe
        with net_lock(net):  # the octave's image lives in the net's input blob until copied out
            x = np.array(solver.solve(i, x0), copy=True)
        check_image_finite(x, i, len(bases))
        if checkpoint is not None:
            checkpoint.save(i, x)
        detail = x - octave_base
    return x
