"""Files: images, run metadata, atomic writes, hashing, resumable state."""
