"""The migrations build exactly the schema the models describe: a model changed without its migration
(or two migrations that both follow the same one) fails here, not in a deployment."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

import store.models  # noqa: F401  (the tables register themselves on SQLModel.metadata)
from store.db import alembic_config, get_engine


def test_one_line_of_migrations() -> None:
    heads = ScriptDirectory.from_config(alembic_config("postgresql+psycopg://unused/none")).get_heads()
    assert len(heads) == 1, f"several heads {heads}: set down_revision so the migrations form one line"


def test_the_migrated_schema_is_the_models_schema(database_url: str) -> None:
    with get_engine(database_url).connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == [], "models and migrations differ:\n" + "\n".join(map(str, differences))
