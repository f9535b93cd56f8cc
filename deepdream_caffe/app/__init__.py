"""Programs built on the API: validated run configurations and file-in, file-out pipelines.

``dream_file(input, output, DreamConfig(...))`` is the whole ``dream``
command as a call; a :class:`DreamSession` loads the net once and dreams
many images (frames, batches) with it.
"""
from .config import DreamConfig, LbfgsOptions, ZoomConfig
from .layers import LayerRow, layer_table
from .netspec import DEFAULT_MODEL, NetSource, NetSpec, resolve_net
from .pipeline import DreamResult, DreamSession, check_output, dream_file, load_input, zoom_file
from .reporting import Progress, Reporter

__all__ = [
    "DEFAULT_MODEL", "DreamConfig", "DreamResult", "DreamSession", "LayerRow", "LbfgsOptions", "NetSource",
    "NetSpec", "Progress", "Reporter", "ZoomConfig", "check_output", "dream_file", "layer_table", "load_input",
    "resolve_net", "zoom_file",
]
