"""Video outputs and the encoder's defaults, as plain constants (the CLI builds --help from them without numpy)."""
from __future__ import annotations

# Output suffix -> FFmpeg muxer; H.264 (libx264) by default, but VP9 in WebM and lossless RGB in animated PNG.
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".apng": "apng"}
CONTAINER_CODECS = {"webm": "libvpx-vp9", "apng": "apng"}
AUDIO_CODECS = {"webm": "libopus"}  # what audio is encoded to where it cannot be copied (else AAC)
# Animations: no sound, looping. GIF and WebP are written by Pillow (suffix -> its format), APNG by FFmpeg.
ANIMATIONS = (".apng", ".gif", ".webp")
PILLOW_ANIMATIONS = {".gif": "GIF", ".webp": "WEBP"}
DEFAULT_CODEC = "libx264"
DEFAULT_CRF = 18  # x264's "visually lossless" end; dreams are full of fine detail
DEFAULT_FPS = 25  # FFmpeg's own default for image sequences
