"""``gateway grants …``: request, check, log in under, list and revoke access grants.

For the support tooling: ``check`` answers by exit status (0 allowed, 1 denied),
``login`` is refused (exit 1) without a live grant.  Mail queued by ``request`` and
``revoke`` is delivered right here in embedded mode (no worker outside ``serve``) and
handed to the broker in scale-out mode.
"""

from __future__ import annotations

from datetime import datetime

import click

from gateway.cli.common import open_gateway, print_json
from gateway.errors import GatewayError
from gateway.grants.overview import activations, grant_view, login_view, logins
from gateway.grants.service import GrantError, live_grant, record_login, request_access, revoke
from gateway.models import utcnow
from gateway.runtime.app import Gateway
from outbound.delivery import deliver_outbox_item

__all__ = ["grants"]


def _deliver(gateway: Gateway, outbox_ids: list[int]) -> None:
    for outbox_id in outbox_ids:
        if gateway.settings.embedded:
            try:
                deliver_outbox_item(gateway.db, gateway.transport, gateway.settings, outbox_id)
            except GatewayError as error:
                click.echo(f"warning: outbox {outbox_id} not delivered yet ({error}); "
                           "gateway serve will retry", err=True)
        else:
            gateway.enqueue_delivery(outbox_id)


def _at(value: datetime | None) -> datetime:
    if value is None:
        return utcnow()
    return value if value.tzinfo else value.replace(tzinfo=utcnow().tzinfo)


_AT = click.option("--at", type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S",
                                                 "%Y-%m-%dT%H:%M"]),
                   default=None, help="Answer for this moment (ISO 8601, UTC if no zone; "
                   "default: now), e.g. to audit a past login.")


@click.group()
def grants() -> None:
    """Support access grants: request, check, login, overviews, revoke."""


@grants.command("request")
@click.option("--team", required=True, help="Team id of the customer.")
@click.option("--agent", default=None, help="The support agent who needs access.")
@click.option("--department", default=None, help="Or a whole department (e.g. support).")
@click.option("--reason", required=True, help="Why access is needed (shown to the customer).")
@click.option("--export", is_flag=True, help="Ask for the export-data right too.")
@click.option("--by", "requested_by", default="", help="Who asks (default: the agent).")
@click.pass_context
def request_cmd(ctx: click.Context, team: str, agent: str | None, department: str | None,
                reason: str, export: bool, requested_by: str) -> None:
    """Mail an activation link to every authorised user of the team."""
    gateway = open_gateway(ctx)
    try:
        with gateway.db.transaction() as session:
            outbox_ids = request_access(session, gateway.services, team, agent_email=agent,
                                        department=department, reason=reason, export=export,
                                        requested_by=requested_by)
    except GrantError as error:
        raise click.ClickException(str(error)) from None
    _deliver(gateway, outbox_ids)
    click.echo(f"activation links sent to {len(outbox_ids)} authorised users of team {team}")


@grants.command("check")
@click.option("--team", required=True)
@click.option("--agent", required=True)
@click.option("--export", is_flag=True, help="Also require the export-data right.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@_AT
@click.pass_context
def check_cmd(ctx: click.Context, team: str, agent: str, export: bool, as_json: bool,
              at: datetime | None) -> None:
    """Exit 0 if AGENT may access TEAM's system now (with --export: and export), else 1."""
    gateway = open_gateway(ctx)
    moment = _at(at)
    with gateway.db.reading() as session:
        grant = live_grant(session, team, agent, export=export, at=moment)
        view = grant_view(grant, moment) if grant is not None else None
    if as_json:
        print_json({"allowed": grant is not None, "team": team, "agent": agent.lower(),
                    "export": export, "grant": view})
    else:
        click.echo(f"allowed by grant {view['id']}" if view else "denied: no live grant")
    ctx.exit(0 if grant is not None else 1)


@grants.command("login")
@click.option("--team", required=True)
@click.option("--agent", required=True)
@click.option("--reason", required=True, help="Why the agent logs in (shown in the overview).")
@click.pass_context
def login_cmd(ctx: click.Context, team: str, agent: str, reason: str) -> None:
    """Record a login with its exact time and reason; refused without a live grant."""
    gateway = open_gateway(ctx)
    try:
        with gateway.db.transaction() as session:
            login = record_login(session, team, agent, reason, gateway.services.now())
            view = login_view(login)
    except GrantError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"login recorded at {view['at']} under grant {view['grant']}")


@grants.command("list")
@click.option("--team", required=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def list_cmd(ctx: click.Context, team: str, as_json: bool) -> None:
    """Activations of the last six months, newest first."""
    gateway = open_gateway(ctx)
    now = gateway.services.now()
    with gateway.db.reading() as session:
        views = [grant_view(g, now) for g in activations(session, team, now)]
    if as_json:
        print_json(views)
        return
    for v in views:
        click.echo(f"{v['id']:<5} {v['state']:<8} {v['granted_at']}  "
                   f"{v['agent'] or 'department ' + str(v['department']):<32} "
                   f"until {v['expires_at'] or 'revoked'}  export={v['export']}  {v['reason']}")


@grants.command("logins")
@click.option("--team", required=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_context
def logins_cmd(ctx: click.Context, team: str, as_json: bool) -> None:
    """Logins of the last six months with exact time and reason, newest first."""
    gateway = open_gateway(ctx)
    now = gateway.services.now()
    with gateway.db.reading() as session:
        views = [login_view(x) for x in logins(session, team, now)]
    if as_json:
        print_json(views)
        return
    for v in views:
        click.echo(f"{v['at']}  {v['agent']:<32} {v['reason']}")


@grants.command("revoke")
@click.argument("grant_id", type=int)
@click.option("--team", required=True)
@click.option("--by", "revoked_by", required=True, help="Who revokes (recorded and mailed).")
@click.pass_context
def revoke_cmd(ctx: click.Context, grant_id: int, team: str, revoked_by: str) -> None:
    """End a live grant at once (operators; customers revoke from the overview page)."""
    gateway = open_gateway(ctx)
    try:
        with gateway.db.transaction() as session:
            outbox_ids = revoke(session, gateway.services, grant_id, team_id=team,
                                by=revoked_by.lower(), now=gateway.services.now())
    except GrantError as error:
        raise click.ClickException(str(error)) from None
    _deliver(gateway, outbox_ids)
    click.echo(f"grant {grant_id} revoked")
