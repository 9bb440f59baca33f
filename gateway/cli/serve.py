"""``gateway serve`` and ``gateway worker``: the two long-running processes (DESIGN 4).

The root group logs at INFO for these two by name; everything else they do lives in
:mod:`gateway.runtime.server`, imported on use so that short commands start fast.
"""

from __future__ import annotations

import logging

import click

from gateway.cli.common import settings_of
from gateway.errors import ConfigError
from gateway.runtime.app import Gateway

__all__ = ["serve", "worker"]

log = logging.getLogger("gateway")


@click.command()
@click.option("--no-worker", is_flag=True, help="Do not run jobs here (scale-out front end).")
@click.pass_context
def serve(ctx: click.Context, no_worker: bool) -> None:
    """Run SMTP intake, web, the sweep and (unless --no-worker) the job worker."""
    from gateway.runtime.server import GatewayServer, run_until_signalled

    server = GatewayServer(Gateway(settings_of(ctx)), run_worker=not no_worker)
    run_until_signalled(server.start, server.stop)


@click.command()
@click.option("--threads", type=int, default=None, help="Worker threads (default: settings).")
@click.pass_context
def worker(ctx: click.Context, threads: int | None) -> None:
    """Run the job worker for scale-out (needs GATEWAY_BROKER_URL)."""
    from gateway.active_policy import current_issue_types, current_policy
    from gateway.runtime.server import run_until_signalled

    settings = settings_of(ctx)
    if settings.embedded:
        raise ConfigError("gateway worker needs GATEWAY_BROKER_URL (redis:// or amqp://); "
                          "in embedded mode gateway serve runs the worker itself")
    gateway = Gateway(settings)

    def start() -> None:
        gateway.services  # noqa: B018 - fail early on a missing secret
        current_policy(settings), current_issue_types(settings)  # fail early on a bad policy
        gateway.start_worker(threads)
        log.info("worker started with %s threads", threads or settings.worker_threads)

    run_until_signalled(start, gateway.close)
