"""``gateway directory``: load the teams, people, agents and catalogue from TOML files.

After a load it points at catalogue entries still missing a translation, because
those are shown in English to everyone until ``gateway catalogue check`` is acted on.
"""

from __future__ import annotations

from pathlib import Path

import click

from gateway.bulk.catalogue import missing_translations
from gateway.cli.common import open_gateway
from gateway.directory import load_directory_file

__all__ = ["directory"]


@click.group()
def directory() -> None:
    """Teams, people, agents and catalogue."""


@directory.command("load")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_context
def directory_load(ctx: click.Context, files: tuple[Path, ...]) -> None:
    """Upsert one or more directory TOML files (idempotent; all or nothing)."""
    gateway = open_gateway(ctx)
    with gateway.db.transaction() as session:
        reports = [(path, load_directory_file(session, path)) for path in files]
    for path, report in reports:
        click.echo(f"{path}: loaded {report}")
    with gateway.db.reading() as session:
        missing = {lang: names for lang, names in missing_translations(session).items() if names}
    if missing:
        counts = ", ".join(f"{lang} {len(names)}" for lang, names in missing.items())
        click.echo(f"catalogue: entries without a translation (shown in English): {counts}; "
                   "`gateway catalogue check` lists them")
