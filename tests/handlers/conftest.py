"""The handlers' tests talk to a bot whose knowledge base is a copy a test may edit or teach."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage.db import Database
from tests.harness import BotHarness, make_settings

FIXTURE_KB = Path(__file__).resolve().parent.parent / "data" / "kb"


@pytest.fixture
def kb(tmp_path: Path) -> Path:
    """A copy of the test knowledge base that a test may edit."""
    folder = tmp_path / "kb"
    shutil.copytree(FIXTURE_KB, folder)
    return folder


@pytest.fixture
async def bot(database: Database, tmp_path: Path, kb: Path) -> AsyncIterator[BotHarness]:
    harness = await BotHarness.create(make_settings(tmp_path, kb_path=str(kb)), database=database)
    yield harness
    await harness.close()
