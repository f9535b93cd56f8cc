"""Channels chosen for the user: the k most active on the input, or k drawn with the run's seed.

``strongest`` ranks a layer's channels by their mean activation on the
input image (the net run forward on it once), highest first, as
neural-dream's ``channel_mode strong`` does; ``random`` draws k distinct
channels with a generator of its own seeded by the run's seed (the
jitter's sequence is untouched). Either way the run records the indices.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple

import numpy as np

from ..dream.gradient import forward_snapshots
from ..dream.transform import preprocess
from ..errors import SettingError
from ..net.access import end_blob, input_blob, raw_net

Pick = Tuple[str, str, int]  # (layer, "strongest" or "random", k)
Chosen = Tuple[Tuple[str, int, float], ...]  # (layer, channel, weight 1)


def channel_count(net: Any, layer: str) -> int:
    return int(end_blob(raw_net(net), layer).data.shape[1])


def check_picks(net: Any, picks: Sequence[Pick]) -> None:
    """Refuse a pick of more channels than its layer has (one line)."""
    for layer, how, k in picks:
        n = channel_count(net, layer)
        if k > n:
            raise SettingError(f"{{picks}} {layer}:{how}={k}: {layer} has only {n} channels")


def channel_means(net: Any, img: np.ndarray, layers: Sequence[str]) -> dict:
    """Each layer's per-channel mean activation (float64, C) with the net run on ``img`` (HxWx3 RGB)."""
    x = preprocess(net, img)
    src = input_blob(raw_net(net))
    src.reshape(1, *x.shape)
    src.data[0] = x
    snaps = forward_snapshots(net, tuple(dict.fromkeys(layers)))
    return {layer: s[0].reshape(s.shape[1], -1).mean(axis=1, dtype=np.float64) for layer, s in snaps.items()}


def strongest(means: np.ndarray, k: int) -> Tuple[int, ...]:
    """The ``k`` channels of highest mean, highest first (ties: the lower index)."""
    return tuple(int(c) for c in np.argsort(-means, kind="stable")[:k])


def pick_channels(net: Any, img: np.ndarray, picks: Sequence[Pick], seed: Optional[int]) -> Chosen:
    """The channels ``picks`` choose on ``img`` with ``seed``, in the order of the picks."""
    if not picks:
        return ()
    means = channel_means(net, img, [layer for layer, how, _ in picks if how == "strongest"]) \
        if any(how == "strongest" for _, how, _ in picks) else {}
    rng = None
    out = []
    for layer, how, k in picks:
        if how == "strongest":
            chosen = strongest(means[layer], k)
        else:
            if seed is None:
                raise SettingError(f"{{picks}} {layer}:random draws with the run's {{seed}}; give one")
            rng = rng or np.random.RandomState(seed)
            chosen = tuple(int(c) for c in rng.choice(channel_count(net, layer), k, replace=False))
        out += [(layer, c, 1.0) for c in chosen]
    return tuple(out)
