"""Video outputs and the encoder's defaults, as plain constants (the CLI builds --help from them without numpy)."""
from __future__ import annotations

# Output suffix -> FFmpeg muxer; all take H.264 (libx264) by default.
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
GIF_SUFFIX = ".gif"
DEFAULT_CODEC = "libx264"
DEFAULT_CRF = 18  # x264's "visually lossless" end; dreams are full of fine detail
DEFAULT_FPS = 25  # FFmpeg's own default for image sequences
