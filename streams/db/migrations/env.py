"""Alembic environment: the URL comes from the caller (streams.db.migrate), never from an ini file."""

from alembic import context

from streams.db.engine import sync_engine
from streams.db.models import Base
from streams.services.search import is_search_table

config = context.config
engine = sync_engine(config.attributes["database_url"])
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=True,
        include_name=lambda name, type_, parents: not (type_ == "table" and is_search_table(name or "")),
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
