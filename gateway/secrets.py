"""The key behind reply tokens, signed links and the sealed outbox copies.

Embedded mode generates one into ``var/secret_key`` on first use (64 hex characters,
mode 0600, in a ``var/`` created 0700); any other mode must be given
``GATEWAY_SECRET_KEY`` so that all nodes agree.  A key shorter than
``MIN_SECRET_KEY_LENGTH`` characters is a configuration error, given or found.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from gateway.config import MIN_SECRET_KEY_LENGTH, Settings
from gateway.errors import ConfigError

__all__ = ["load_secret", "private_directory"]


def private_directory(path: Path) -> None:
    """Create ``path`` (and its parents) if missing; the directory itself 0700."""
    if not path.exists():
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.chmod(0o700)  # whatever the umask said


def load_secret(settings: Settings) -> bytes:
    if settings.secret_key:
        return settings.secret_key.encode()
    if not (settings.embedded and settings.is_sqlite):
        raise ConfigError("GATEWAY_SECRET_KEY is required when the gateway runs on PostgreSQL "
                          "or with an external broker (all nodes must share it)")
    path = Path(settings.var_dir) / "secret_key"
    if not path.exists():
        private_directory(path.parent)
        temporary = path.with_name(f".secret_key.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)  # atomic: the first process to get here wins
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    key = path.read_text().strip()
    if len(key) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(f"the key in {path} is shorter than {MIN_SECRET_KEY_LENGTH} "
                          "characters: remove the file to have a new one generated")
    return key.encode()
