"""What one frame carries to the next: a video's previous dream along the optical flow, a zoom's zoomed in.

Dreaming each frame of a clip on its own gives a new pattern every frame
(flicker). Instead, before frame t is dreamed, the dream of frame t-1 is
moved to where its content went and blended into frame t:

1. dense optical flow between the two *input* frames (OpenCV's Farneback
   or DIS), in both directions: ``back`` (t -> t-1) says where each pixel
   of frame t was in frame t-1, ``fwd`` (t-1 -> t) the reverse;
2. the previous dream (or only its detail, dream minus input) is sampled
   at ``p + back(p)``: the warp;
3. occlusion: where the two flows disagree (the forward-backward check of
   Sundaram et al. 2010) the pixel was hidden in frame t-1; where ``back``
   points outside the frame it was off screen; at motion boundaries (a
   steep flow gradient) the flow itself is unreliable, as dense flows smear
   the motion of an object onto the background it uncovers. Thresholds are
   those of Ruder et al. 2016. Nothing is carried to these pixels, so
   revealed regions come from frame t;
4. ``input = frame + blend * visible * (warped - frame)`` (carry "dream")
   or ``frame + blend * visible * warped_detail`` (carry "detail").

With ``method="none"`` the previous dream is blended as it is, unwarped
(DeepDreamVideo's blend); ``blend=0`` dreams every frame on its own.

A zoom sequence carries the whole previous dream, scaled up about its
centre (:func:`zoom_in`, the notebook's), or moved by :func:`move`: scaled
either way, turned and shifted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np
import scipy.ndimage as nd

from ..errors import DeepDreamError, import_extra
from ..io.image import to_uint8
from .defaults import BLEND, CARRY, CARRY_MODES, FLOW, FLOW_METHODS

# Forward-backward consistency: |b + f|^2 <= ALPHA (|b|^2 + |f|^2) + BETA (pixels^2).
CONSISTENCY_ALPHA = 0.01
CONSISTENCY_BETA = 0.5
# Motion boundary: |grad b_x|^2 + |grad b_y|^2 > ALPHA |b|^2 + BETA.
BOUNDARY_ALPHA = 0.01
BOUNDARY_BETA = 0.002


def _cv2() -> Any:
    return import_extra("cv2", "video")


def gray(img: np.ndarray) -> np.ndarray:
    """8-bit luminance of an RGB frame, what both flow methods take."""
    cv2 = _cv2()
    return cv2.cvtColor(np.ascontiguousarray(to_uint8(img)), cv2.COLOR_RGB2GRAY)


class FlowEstimator:
    """Dense flow between two 8-bit gray frames: ``flow(a, b)[y, x] = (dx, dy)`` with ``a(p) ~ b(p + d)``."""

    def __init__(self, method: str = FLOW) -> None:
        if method not in FLOW_METHODS or method == "none":
            raise DeepDreamError(f"flow method must be one of farneback, dis; got '{method}'")
        self.method = method
        cv2 = _cv2()
        self._dis = None
        if method == "dis":
            # The medium preset: OpenCV's balance of speed and accuracy for video.
            self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        cv2 = _cv2()
        if self._dis is not None:
            return self._dis.calc(a, b, None)
        # OpenCV's sample parameters (pyramid 0.5, window 15, polynomial 5 / 1.2), one
        # pyramid level more for motions of a few tens of pixels in large frames.
        levels = 4 if min(a.shape) >= 256 else 3
        return cv2.calcOpticalFlowFarneback(a, b, None, 0.5, levels, 15, 3, 5, 1.2, 0)


def _grid(h: int, w: int) -> Tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    return xs, ys


def warp(img: np.ndarray, back: np.ndarray) -> np.ndarray:
    """``img`` (of frame t-1) moved into frame t: ``out(p) = img(p + back(p))``, bilinear."""
    cv2 = _cv2()
    h, w = back.shape[:2]
    xs, ys = _grid(h, w)
    return cv2.remap(np.ascontiguousarray(img, np.float32), xs + back[..., 0], ys + back[..., 1],
                     interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def visible_mask(back: np.ndarray, fwd: np.ndarray) -> np.ndarray:
    """1 where pixel ``p`` of frame t can take what was at ``p + back(p)`` in frame t-1, else 0.

    0 where it was hidden (going forward from ``q = p + back(p)`` does not
    come home: ``back(p) + fwd(q)`` is far from 0, beyond a tolerance that
    grows with the motion), off screen (``q`` outside the frame), or on a
    motion boundary (the flow changes steeply, so it is not to be trusted).
    """
    cv2 = _cv2()
    h, w = back.shape[:2]
    xs, ys = _grid(h, w)
    qx, qy = xs + back[..., 0], ys + back[..., 1]
    f = cv2.remap(np.ascontiguousarray(fwd, np.float32), qx, qy, interpolation=cv2.INTER_LINEAR,
                  borderMode=cv2.BORDER_REPLICATE)
    b2 = np.sum(back ** 2, axis=2)
    err = np.sum((back + f) ** 2, axis=2)
    consistent = err <= CONSISTENCY_ALPHA * (b2 + np.sum(f ** 2, axis=2)) + CONSISTENCY_BETA
    inside = (qx >= 0) & (qx <= w - 1) & (qy >= 0) & (qy <= h - 1)
    gy_x, gx_x = np.gradient(back[..., 0])
    gy_y, gx_y = np.gradient(back[..., 1])
    boundary = gx_x ** 2 + gy_x ** 2 + gx_y ** 2 + gy_y ** 2 > BOUNDARY_ALPHA * b2 + BOUNDARY_BETA
    return (consistent & inside & ~boundary).astype(np.float32)


@dataclass
class CarryInfo:
    """What one carry did: the fraction of the frame that took the previous dream."""

    visible: float


class FrameCarry:
    """Builds each frame's dream input from the previous frame, its dream and the flow between them."""

    def __init__(self, method: str = FLOW, blend: float = BLEND, carry: str = CARRY) -> None:
        if method not in FLOW_METHODS:
            raise DeepDreamError(f"--flow must be one of {', '.join(FLOW_METHODS)}; got '{method}'")
        if carry not in CARRY_MODES:
            raise DeepDreamError(f"--carry must be one of {', '.join(CARRY_MODES)}; got '{carry}'")
        if not 0.0 <= blend <= 1.0:
            raise DeepDreamError(f"--blend must be in [0, 1], got {blend}")
        self.method, self.blend, self.carry = method, float(blend), carry
        self.flow = FlowEstimator(method) if method != "none" and blend > 0 else None

    def __call__(self, frame: np.ndarray, prev_frame: Optional[np.ndarray],
                 prev_dream: Optional[np.ndarray]) -> Tuple[np.ndarray, CarryInfo]:
        """The dream input for ``frame`` (float32 HxWx3) and what was carried."""
        frame = np.asarray(frame, np.float32)
        if prev_frame is None or prev_dream is None or self.blend == 0.0:
            return frame, CarryInfo(0.0)
        carried = prev_dream if self.carry == "dream" else prev_dream - prev_frame
        if self.flow is None:
            mask = None
        else:
            a, b = gray(prev_frame), gray(frame)
            back, fwd = self.flow(b, a), self.flow(a, b)
            carried = warp(carried, back)
            mask = visible_mask(back, fwd)
        weight = np.float32(self.blend) if mask is None else (np.float32(self.blend) * mask)[..., None]
        if self.carry == "dream":
            out = frame + weight * (carried - frame)
        else:
            out = frame + weight * carried
        visible = 1.0 if mask is None else float(mask.mean())
        # The frame is in [0, 255]; a carried detail must not push it out (the dream's clip range).
        return np.clip(out, 0.0, 255.0).astype(np.float32), CarryInfo(visible)


def zoom_in(frame: np.ndarray, s: float = 0.05) -> np.ndarray:
    """Scale the frame up by 1/(1-s) about its centre, keeping its size (the notebook's affine_transform)."""
    h, w = frame.shape[:2]
    return nd.affine_transform(frame, [1 - s, 1 - s, 1], [h * s / 2, w * s / 2, 0], order=1)


def move(frame: np.ndarray, scale: float = 0.05, rotate: float = 0.0,
         pan: Tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The frame scaled by 1/(1-scale) about its centre (``scale < 0`` zooms out), turned ``rotate`` degrees
    counterclockwise and shifted ``pan = (dx, dy)`` pixels right and down; same size, bilinear.

    With no turn or shift a zoom in is :func:`zoom_in`, bit for bit. Pixels
    that come from outside the frame are its mirror image (no black edges
    for the dream to draw on).
    """
    if rotate == 0 and pan[0] == 0 and pan[1] == 0 and scale > 0:
        return zoom_in(frame, scale)
    h, w = frame.shape[:2]
    t = np.deg2rad(rotate)
    # Output pixel o (row, col) takes input c + (1-s) R (o - c - p): R turns back by `rotate` (rows point down).
    m = (1 - scale) * np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])
    c = np.array([h / 2, w / 2])
    offset = c - m @ (c + np.array([pan[1], pan[0]]))
    matrix = np.eye(3)
    matrix[:2, :2] = m
    return nd.affine_transform(frame, matrix, [offset[0], offset[1], 0], order=1, mode="reflect")
