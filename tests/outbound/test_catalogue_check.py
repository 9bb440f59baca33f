"""``gateway catalogue check`` and ``directory load``: operators see which catalogue
entries their readers get in English because a translation is missing."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.config import Settings
from tests.conftest import DIRECTORY, run_gateway

CATALOGUE = """
[[features]]
id = "file-requests"
url = "https://help.support.example/file-requests"

[features.name]
en = "File requests"
de = "Dateianfragen"
it = "Richieste di file"
[features.description]
en = "Collect files from anyone."
de = "Dateien von allen einsammeln."

[[features]]
id = "smart-sync"
url = "https://help.support.example/smart-sync"

[features.name]
en = "Smart sync"
de = "Intelligente Synchronisierung"
it = "Sincronizzazione"
ja = "スマート同期"

[[articles]]
id = "sync-basics"
url = "https://help.support.example/sync"
[articles.title]
en = "Fix sync problems"
ja = "同期の問題を解決する"
de = "Sync-Probleme beheben"
it = "Risolvere i problemi di sincronizzazione"
nl = "Synchronisatie herstellen"
"""
COMPLETION = """
[[features]]
id = "file-requests"
url = "https://help.support.example/file-requests"

[features.name]
en = "File requests"
de = "Dateianfragen"
it = "Richieste di file"
ja = "ファイルリクエスト"
[features.description]
en = "Collect files from anyone."
de = "Dateien von allen einsammeln."
it = "Raccogli file da chiunque."
ja = "誰からでもファイルを集められます。"

[[features]]
id = "smart-sync"
url = "https://help.support.example/smart-sync"
[features.name]
en = "Smart sync"
de = "Intelligente Synchronisierung"
it = "Sincronizzazione"
ja = "スマート同期"
"""


def test_missing_translations_are_listed_per_language_in_use(settings: Settings,
                                                              tmp_path: Path) -> None:
    # Given the test directory (people in de, it and ja) and a catalogue missing some texts
    catalogue = tmp_path / "catalogue.toml"
    catalogue.write_text(CATALOGUE, encoding="utf-8")
    assert run_gateway(settings, "db", "upgrade").returncode == 0

    # When the operator loads it, the load says that some entries will be shown in English
    loaded = run_gateway(settings, "directory", "load", str(DIRECTORY), str(catalogue))
    assert loaded.returncode == 0, loaded.stderr
    assert ("catalogue: entries without a translation (shown in English): it 1, ja 2; "
            "`gateway catalogue check` lists them") in loaded.stdout.decode()

    # And the check lists them per language (nl is nobody's language: not asked for)
    check = run_gateway(settings, "catalogue", "check")
    assert check.returncode == 1
    assert check.stdout.decode().splitlines() == [
        "it: 1 missing (shown in English):", "  features.file-requests.description",
        "ja: 2 missing (shown in English):", "  features.file-requests.name",
        "  features.file-requests.description"]
    as_json = run_gateway(settings, "catalogue", "check", "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) == {
        "de": [], "it": ["features.file-requests.description"],
        "ja": ["features.file-requests.name", "features.file-requests.description"]}

    # When the translations are added, the check passes
    catalogue.write_text(COMPLETION, encoding="utf-8")
    loaded = run_gateway(settings, "directory", "load", str(catalogue))
    assert loaded.returncode == 0 and b"catalogue:" not in loaded.stdout
    check = run_gateway(settings, "catalogue", "check")
    assert check.returncode == 0, check.stdout
    assert check.stdout.decode().strip() == (
        "catalogue complete for the languages in use (de, it, ja)")
