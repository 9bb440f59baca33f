"""Fixtures of the hub data tests: the test gateway with the bulk directory's articles."""

from __future__ import annotations

import pytest

from gateway.directory import load_directory_file
from gateway.runtime.app import Gateway
from tests.bulk.conftest import BULK_DIRECTORY


@pytest.fixture
def with_articles(gateway: Gateway) -> Gateway:
    """The gateway with the bulk directory (more teams, articles) loaded."""
    with gateway.db.transaction() as session:
        load_directory_file(session, BULK_DIRECTORY)
    return gateway
