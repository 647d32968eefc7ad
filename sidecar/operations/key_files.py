"""Secret keys kept in files: created once, atomically, private to the user, read back byte for byte.

The resume secret (sidecar/serving/server.py) and the recording pseudonymisation key (sidecar/operations/recording.py)
must stay the same across restarts: a key read back differently would split every player's
recordings and invalidate every resume token. Keys are raw random bytes, so nothing is stripped.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["read_or_create_key"]


def read_or_create_key(path: str | Path, nbytes: int = 32) -> bytes:
    """The key in `path`, exactly as stored; a new random one (written atomically, mode 0600) when the
    file does not exist. Two processes creating it at once both end up reading the one that won."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(nbytes))
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # fails if another process created it meanwhile: theirs wins
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_bytes()
