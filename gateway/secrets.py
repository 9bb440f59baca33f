"""The key behind reply tokens and signed links.

Embedded mode generates one into ``var/secret_key`` on first use (mode 0600);
any other mode must be given ``GATEWAY_SECRET_KEY`` so that all nodes agree.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from gateway.config import Settings
from gateway.errors import ConfigError

__all__ = ["load_secret"]


def load_secret(settings: Settings) -> bytes:
    if settings.secret_key:
        return settings.secret_key.encode()
    if not (settings.embedded and settings.is_sqlite):
        raise ConfigError("GATEWAY_SECRET_KEY is required when the gateway runs on PostgreSQL "
                          "or with an external broker (all nodes must share it)")
    path = Path(settings.var_dir) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
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
    return path.read_text().strip().encode()
