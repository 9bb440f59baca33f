"""The gateway's exception tree.

::

    GatewayError                 base of everything we raise on purpose
    ├── ConfigError              settings or policy file invalid (exit status 78)
    ├── DirectoryError           directory file invalid: names file, table and key
    ├── StorageError             the spool could not commit (SMTP 451, ingest 75)
    └── DeliveryError
        ├── TemporaryFailure     retry later (4xx, connection trouble)
        └── PermanentFailure     give up (5xx): the outbox row is marked dead

Pipeline outcomes (ignored, quarantined) are data on the context, not exceptions.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DeliveryError",
    "DirectoryError",
    "GatewayError",
    "PermanentFailure",
    "StorageError",
    "TemporaryFailure",
]


class GatewayError(Exception):
    """Base class for errors the gateway raises deliberately."""


class ConfigError(GatewayError):
    """The configuration cannot be used; the message is one sentence for the operator."""


class DirectoryError(GatewayError):
    """A directory file holds an unknown key or a bad value."""


class StorageError(GatewayError):
    """Raw mail could not be committed to the spool; the sender must retry."""


class DeliveryError(GatewayError):
    """An outbound message could not be handed to the next hop."""


class TemporaryFailure(DeliveryError):
    """The next hop asked us to try again later."""


class PermanentFailure(DeliveryError):
    """The next hop refused for good; retrying cannot help."""
