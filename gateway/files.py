"""Files another process reads while they change: written whole, then renamed into place."""

from __future__ import annotations

from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """Readers (HAProxy, the Chroma entrypoint) see the old content or the new, never half of it."""
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(text)
    staging.replace(path)
