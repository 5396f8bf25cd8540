"""Alembic's environment: the store hands it a connection; the command line gets an async one.

At run time :func:`storage.migrate.upgrade` passes its connection in ``config.attributes``,
already inside the transaction that holds the migration lock. ``alembic`` on the command line
(``alembic -c storage/alembic.ini upgrade head``) connects to ``DATABASE_URL`` itself.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from storage.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


async def _run_async(url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from storage.factory import engine_url

    engine = create_async_engine(engine_url(url))
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    import os

    url = context.config.get_main_option("sqlalchemy.url") or os.environ["DATABASE_URL"]
    asyncio.run(_run_async(url))


_main()
