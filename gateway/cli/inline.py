"""Processing right in the command, for embedded mode (``ingest``, ``inbox replay``).

Embedded mode has no worker outside ``serve``, so a command that stores or releases a
message runs the pipeline itself and tries the resulting mail once.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager

from gateway.config import Settings
from gateway.errors import GatewayError
from gateway.pipeline.processing import process_spool_entry
from gateway.runtime.app import Gateway
from gateway.runtime.processing_pool import pool_size
from outbound.delivery import deliver_outbox_item

__all__ = ["inline_slot", "process_inline"]

log = logging.getLogger("gateway")


def process_inline(gateway: Gateway, spool_id: int) -> None:
    """Process spool entry ``spool_id`` and deliver its mail; ``serve`` retries what fails."""
    outcome = process_spool_entry(gateway.db, gateway.services, spool_id)
    for outbox_id in outcome.outbox_ids:
        try:
            deliver_outbox_item(gateway.db, gateway.transport, gateway.settings, outbox_id)
        except GatewayError as error:
            log.warning("outbox %s not delivered yet (%s); serve will retry", outbox_id, error)


@contextmanager
def inline_slot(settings: Settings) -> Iterator[bool]:
    """One of the places for an ``ingest`` process to process in (True), or none free.

    The MTA runs as many ``ingest`` processes at once as its concurrency allows (Postfix:
    20), and processing a 23 MB message in one peaks at about 350 MB and takes a core at
    normal priority: twenty at once would want 7 GB and every core ``serve`` has.  So at most
    ``pool_size`` of them (what ``serve``'s processing pool runs) process at once, each
    holding a lock file ``var/ingest-slot-N.lock``; the others leave the stored message to
    ``serve``'s sweep.  Where no lock file can be made, processing goes ahead as before.
    """
    free, descriptor = _take_slot(settings)
    try:
        yield free
    finally:
        if descriptor is not None:
            os.close(descriptor)  # releases the lock


def _take_slot(settings: Settings) -> tuple[bool, int | None]:
    """Whether this process may process, and the locked slot file to close afterwards."""
    try:
        settings.var_dir.mkdir(parents=True, exist_ok=True)
        for number in range(max(1, pool_size(settings))):
            descriptor = os.open(settings.var_dir / f"ingest-slot-{number}.lock",
                                 os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                continue
            return True, descriptor
    except OSError as error:
        log.debug("no ingest slot file (%s): processing anyway", error)
        return True, None
    return False, None
