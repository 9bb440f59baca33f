"""Commands of bulk mail: ``quarterly run``, ``announce``, ``announcements list/resume``,
``usage import``.  Registered on the main group by :mod:`gateway.cli`.

In embedded mode these commands deliver what they queue themselves (there is no worker
outside ``serve``); in scale-out they hand it to the workers.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from sqlalchemy import select

from gateway.bulk.announcements import (
    AnnouncementError,
    counts_of,
    create_announcement,
    list_announcements,
    send_announcement,
)
from gateway.bulk.quarterly import describe, parse_quarter, plan, run_quarterly
from gateway.bulk.unsubscribe import unsubscribed
from gateway.bulk.usage_import import import_usage_csv
from gateway.cli.common import open_gateway, print_json
from gateway.job_items import JobItems
from gateway.models import QuarterlySend, utcnow
from gateway.runtime.app import Gateway
from outbound.render import LANGUAGES

__all__ = ["announce", "announcements", "quarterly", "usage"]


def _progress(line: str) -> None:
    click.echo(line)


# -- quarterly ------------------------------------------------------------------------
@click.group()
def quarterly() -> None:
    """Quarterly feature emails to the admins of premium teams."""


@quarterly.command("run")
@click.option("--quarter", required=True, help="The quarter to mail, e.g. 2026Q4.")
@click.option("--dry-run", is_flag=True, help="Only print who would get which three features.")
@click.option("--json", "as_json", is_flag=True, help="With --dry-run: print a JSON array.")
@click.pass_context
def quarterly_run(ctx: click.Context, quarter: str, dry_run: bool, as_json: bool) -> None:
    """Send the quarter's feature mail; at most one per admin and team, however often run."""
    quarter = quarter.strip().upper()
    try:
        parse_quarter(quarter)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--quarter") from None
    gateway = open_gateway(ctx)
    if dry_run:
        with gateway.db.reading() as session:
            rows = describe(plan(session, quarter, utcnow().date()))
            done = set(session.execute(select(QuarterlySend.person_email, QuarterlySend.team_id)
                                       .where(QuarterlySend.quarter == quarter)).tuples().all())
            left = unsubscribed(session, "quarterly")
        for row in rows:
            row["status"] = ("already sent" if (row["email"], row["team"]) in done
                             else "unsubscribed" if row["email"] in left else "would send")
        if as_json:
            print_json(rows)
            return
        for row in rows:
            click.echo(f"{row['email']:<32} {row['team']:<16} {row['language']}  "
                       f"{', '.join(row['features'])}  ({row['status']})")
        click.echo(f"{sum(r['status'] == 'would send' for r in rows)} would be sent")
        return
    report = run_quarterly(gateway.db, gateway.services,
                           gateway.deliverer(inline=gateway.settings.embedded), quarter,
                           progress=_progress)
    click.echo(f"quarterly {quarter}: {len(report.sent)} sent, {report.already_sent} already "
               f"sent before, {report.unsubscribed} unsubscribed")
    report.items.check()  # names the admins whose mail failed; exit status 1


# -- announcements --------------------------------------------------------------------
def _translation(value: str) -> tuple[str, dict[str, str]]:
    language, sep, filename = value.partition("=")
    if not sep or language not in LANGUAGES or language == "en":
        raise click.BadParameter(f"{value!r}: expected LANG=FILE with LANG one of "
                                 f"{', '.join(x for x in LANGUAGES if x != 'en')}",
                                 param_hint="--language-file")
    try:
        text = Path(filename).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise click.BadParameter(f"{filename}: {error}", param_hint="--language-file") from None
    subject, _, body = text.partition("\n")
    if not subject.strip() or not body.strip():
        raise click.BadParameter(f"{filename}: the first line is the subject, then the body",
                                 param_hint="--language-file")
    return language, {"subject": subject.strip(), "body": body.strip("\n") + "\n"}


@click.command()
@click.option("--subject", required=True, help="Subject of the English (default) version.")
@click.option("--body-file", required=True, type=click.File("r", encoding="utf-8"),
              help="Plain-text body of the English (default) version.")
@click.option("--audience", default="all", show_default=True,
              help="all | premium | team:ID")
@click.option("--language-file", "--language-files", "language_files", multiple=True,
              metavar="LANG=FILE",
              help="A translation: first line the subject, then the body (repeatable).")
@click.option("--no-send", is_flag=True,
              help="Only record it; the scheduler of gateway serve sends it.")
@click.pass_context
def announce(ctx: click.Context, subject: str, body_file: Any, audience: str,
             language_files: tuple[str, ...], no_send: bool) -> None:
    """Send an announcement to everyone in the audience who has not unsubscribed."""
    translations = dict(_translation(v) for v in language_files)
    body = body_file.read()
    gateway = open_gateway(ctx)
    try:
        with gateway.db.transaction() as session:
            announcement = create_announcement(
                session, subject=subject, body=body, audience=audience,
                translations=translations, today=utcnow().date())
            announcement_id = announcement.id
    except AnnouncementError as error:
        raise click.UsageError(str(error)) from None
    counts = counts_of(gateway.db, announcement_id)
    click.echo(f"announcement {announcement_id}: {counts['recipients']} recipients, "
               f"{counts['skipped']} unsubscribed")
    if not no_send:
        _send(gateway, announcement_id)


def _send(gateway: Gateway, announcement_id: int, *, wait: bool = False) -> None:
    """Send; with ``wait``, first wait for the lease of a sender that died to lapse."""
    settings = gateway.settings
    deadline = time.monotonic() + max(settings.bulk_lease_ttl, 3 * settings.bulk_batch_interval)
    said = False
    deliver = gateway.deliverer(inline=settings.embedded)
    items = JobItems("announce")
    while not send_announcement(gateway.db, gateway.services, deliver, announcement_id,
                                inline=settings.embedded, progress=_progress, items=items):
        if not wait or time.monotonic() > deadline:
            click.echo(f"announcement {announcement_id} is being sent by another process")
            return
        if not said:
            click.echo(f"announcement {announcement_id}: waiting for the previous sender's "
                       "lease to lapse")
            said = True
        time.sleep(1.0)
    counts = counts_of(gateway.db, announcement_id)
    click.echo(f"announcement {announcement_id}: {counts['queued']} queued, "
               f"{counts['skipped']} unsubscribed, {counts['sent']} delivered so far")
    items.check()  # names the recipients whose mail could not be made; exit status 1


@click.group()
def announcements() -> None:
    """Past announcements."""


@announcements.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def announcements_list(ctx: click.Context, as_json: bool) -> None:
    """Announcements, newest first, with recipients, skipped, queued and delivered counts."""
    gateway = open_gateway(ctx)
    with gateway.db.reading() as session:
        views = list_announcements(session)
    if as_json:
        print_json(views)
        return
    for v in views:
        click.echo(f"{v['id']:<5} {v['created_at'][:16]} {v['status']:<8} {v['audience']:<14} "
                   f"{v['recipients']} recipients, {v['queued']} queued, {v['sent']} delivered, "
                   f"{v['skipped']} unsubscribed, {v['failed']} failed  {v['subject']}")


@announcements.command("resume")
@click.argument("announcement_id", type=int)
@click.pass_context
def announcements_resume(ctx: click.Context, announcement_id: int) -> None:
    """Continue sending an interrupted announcement (never twice to anyone)."""
    gateway = open_gateway(ctx)
    if not any(v["id"] == announcement_id for v in _views(gateway)):
        raise click.ClickException(f"there is no announcement {announcement_id}")
    _send(gateway, announcement_id, wait=True)


def _views(gateway: Gateway) -> list[dict[str, Any]]:
    with gateway.db.reading() as session:
        return list_announcements(session)


# -- usage ----------------------------------------------------------------------------
@click.group()
def usage() -> None:
    """Feature usage data (for the quarterly feature mail)."""


@usage.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.pass_context
def usage_import(ctx: click.Context, file: Path) -> None:
    """Upsert a CSV with the columns team,feature,count,period (all or nothing)."""
    gateway = open_gateway(ctx)
    with gateway.db.transaction() as session:
        count = import_usage_csv(session, file)
    click.echo(f"{file}: {count} usage rows imported")
