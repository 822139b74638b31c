"""Full-text search: an FTS5 table on SQLite, a tsvector column with a GIN index on PostgreSQL.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE search_index USING fts5("
            "kind UNINDEXED, entity_id UNINDEXED, body, tokenize = 'porter unicode61')"
        )
    else:
        op.execute(
            "CREATE TABLE search_documents ("
            "kind varchar(20) NOT NULL, entity_id varchar(64) NOT NULL, body text NOT NULL, "
            "tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', body)) STORED, "
            "PRIMARY KEY (kind, entity_id))"
        )
        op.execute("CREATE INDEX search_documents_tsv ON search_documents USING gin (tsv)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE search_index")
    else:
        op.execute("DROP TABLE search_documents")
