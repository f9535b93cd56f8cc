"""Programs built on the API: validated run configurations and file-in, file-out pipelines.

``dream_file(input, output, DreamConfig(...))`` is the whole ``dream``
command as a call; a :class:`DreamSession` loads the net once and dreams
many images (frames, batches) with it; ``video_file(input, output, DreamConfig(...), VideoConfig(...))``
dreams a clip frame by frame with optical-flow coherence; ``visualize_file(output, VisualizeConfig(...))``
is the ``visualize`` command.
"""
from __future__ import annotations

from .._lazy import lazy_exports

# Loaded on first use, so the command line can build its parser without numpy or Caffe.
_EXPORTS = {
    "DEFAULT_MODEL": ".netspec",
    "DreamConfig": ".config",
    "DreamResult": ".pipeline",
    "DreamSession": ".pipeline",
    "FrameProgress": ".reporting",
    "LayerRow": ".layers",
    "NetSource": ".netspec",
    "NetSpec": ".netspec",
    "Progress": ".reporting",
    "Reporter": ".reporting",
    "VideoConfig": ".video",
    "VideoResult": ".video",
    "VisualizeConfig": ".visualize",
    "ZoomConfig": ".config",
    "check_output": ".pipeline",
    "dream_file": ".pipeline",
    "frames_to_video_file": ".video",
    "layer_table": ".layers",
    "load_input": ".pipeline",
    "resolve_net": ".netspec",
    "video_file": ".video",
    "visualize_file": ".visualize",
    "zoom_file": ".pipeline",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
