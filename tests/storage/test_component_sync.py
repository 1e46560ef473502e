"""Several bot processes start at once on one PostgreSQL: each brings the declared components in,
and none of them fails to start because another one declared them a moment earlier."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.app import sync_components_file
from bot.status.components import load_components_file
from storage import status_repo
from storage.db import Database
from tests.harness import make_settings

COMPONENTS = Path(__file__).resolve().parents[1] / "data" / "components.yml"


async def test_processes_starting_together_declare_each_component_once(
    postgres_database: Database, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, components_file=COMPONENTS)

    await asyncio.gather(*(sync_components_file(postgres_database, settings) for _ in range(4)))

    async with postgres_database.session() as session:
        stored = [component.name for component in await status_repo.list_components(session)]
    assert sorted(stored) == sorted(spec.name for spec in load_components_file(COMPONENTS))
