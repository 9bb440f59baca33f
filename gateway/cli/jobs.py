"""``gateway jobs list`` and ``gateway jobs run NAME [--at ISO8601]`` (DESIGN §12).

For operators after an outage, and for tests: run one scheduled job of the table in
:mod:`gateway.runtime.jobs` now, as if the clock read ``--at``.  It runs here, whether or
not a ``serve`` node leads the scheduler (jobs are idempotent); in embedded mode what it
queues is delivered here too (there is no worker outside ``serve``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from gateway.cli.common import open_gateway, print_json
from gateway.job_items import JobItemsFailed
from gateway.leases import current_holder, holder_name
from gateway.models import utcnow
from gateway.runtime.jobs import JOBS, UnknownJob, find_job, job_views, run_job
from gateway.runtime.scheduler import LEASE_NAME

__all__ = ["jobs"]


@click.group()
def jobs() -> None:
    """Scheduled jobs: list them, or run one by hand as of a given time."""


@jobs.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def jobs_list(ctx: click.Context, as_json: bool) -> None:
    """Every scheduled job: name, cadence, last run, and the node leading the scheduler."""
    gateway = open_gateway(ctx)
    views = job_views(gateway.db, gateway.settings, current_holder(gateway.db, LEASE_NAME))
    if as_json:
        print_json(views)
        return
    for view in views:
        last = (f"{view['last_run']} ({view['last_outcome']}, as of {view['last_run_as_of']})"
                if view["last_run"] else "never")
        click.echo(f"{view['name']:<16} {view['cadence']:<44} last run {last}")
    click.echo(f"scheduler leader: {views[0]['leader'] if views and views[0]['leader'] else '-'}")


def _moment(value: str | None) -> datetime:
    if value is None:
        return utcnow()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time such as "
                                 "2026-12-05T09:30:00+00:00", param_hint="--at") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@jobs.command("run")
@click.argument("name")
@click.option("--at", "at", default=None, metavar="ISO8601",
              help="Run as if the clock read this time (default: now; no zone means UTC).")
@click.pass_context
def jobs_run(ctx: click.Context, name: str, at: str | None) -> None:
    """Run the scheduled job NAME once, now (names: see `gateway jobs list`)."""
    try:
        job = find_job(name, JOBS)
    except UnknownJob as error:
        raise click.ClickException(str(error)) from None
    now = _moment(at)
    gateway = open_gateway(ctx)
    handed: list[int] = []
    deliver = gateway.deliverer(inline=gateway.settings.embedded)

    def count_and_deliver(outbox_ids: list[int]) -> None:
        handed.extend(outbox_ids)
        deliver(outbox_ids)

    try:
        run_job(job, gateway.db, gateway.services, count_and_deliver, now=now,
                node=f"jobs run on {holder_name()}")
    except JobItemsFailed:  # the others were done: say so, then which failed (exit 1)
        click.echo(f"{job.name}: ran as of {now.isoformat()}; {len(handed)} mails queued")
        raise
    click.echo(f"{job.name}: ran as of {now.isoformat()}; {len(handed)} mails queued")
