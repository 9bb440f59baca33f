"""``gateway catalogue check [--json]``: the catalogue entries that would fall back to English.

Exit 0 when every feature name/description and article title has a text in every
language the directory's people and teams use; exit 1 listing, per language, the
entries that have none (their readers get the English text).
"""

from __future__ import annotations

import sys

import click

from gateway.bulk.catalogue import missing_translations
from gateway.cli.common import open_gateway, print_json

__all__ = ["catalogue"]


@click.group()
def catalogue() -> None:
    """The directory's catalogue (features, articles)."""


@catalogue.command("check")
@click.option("--json", "as_json", is_flag=True,
              help="Print one object: language → missing entries.")
@click.pass_context
def catalogue_check(ctx: click.Context, as_json: bool) -> None:
    """List catalogue entries without a translation for a language in use; exit 1 if any."""
    gateway = open_gateway(ctx)
    with gateway.db.reading() as session:
        missing = missing_translations(session)
    incomplete = {language: names for language, names in missing.items() if names}
    if as_json:
        print_json(missing)
    elif not incomplete:
        languages = ", ".join(missing) or "none besides en"
        click.echo(f"catalogue complete for the languages in use ({languages})")
    else:
        for language, names in incomplete.items():
            click.echo(f"{language}: {len(names)} missing (shown in English):")
            for name in names:
                click.echo(f"  {name}")
    if incomplete:
        sys.exit(1)
