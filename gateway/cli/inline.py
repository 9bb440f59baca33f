"""Processing right in the command, for embedded mode (``ingest``, ``inbox replay``).

Embedded mode has no worker outside ``serve``, so a command that stores or releases a
message runs the pipeline itself and tries the resulting mail once.
"""

from __future__ import annotations

import logging

from gateway.errors import GatewayError
from gateway.pipeline.processing import process_spool_entry
from gateway.runtime.app import Gateway
from outbound.delivery import deliver_outbox_item

__all__ = ["process_inline"]

log = logging.getLogger("gateway")


def process_inline(gateway: Gateway, spool_id: int) -> None:
    """Process spool entry ``spool_id`` and deliver its mail; ``serve`` retries what fails."""
    outcome = process_spool_entry(gateway.db, gateway.services, spool_id)
    for outbox_id in outcome.outbox_ids:
        try:
            deliver_outbox_item(gateway.db, gateway.transport, gateway.settings, outbox_id)
        except GatewayError as error:
            log.warning("outbox %s not delivered yet (%s); serve will retry", outbox_id, error)
