"""Full-text search over users and posts, with each database's own engine.

SQLite uses an FTS5 virtual table (porter stemming); PostgreSQL a generated tsvector column
with a GIN index (the english configuration). Both are created by migration 0002 and live
outside the ORM models, so this module is the only code that knows their shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from streams.db.engine import dialect

SEARCH_TABLES = ("search_index", "search_documents")


def is_search_table(name: str) -> bool:
    """True for the search tables and FTS5's own shadow tables, which the ORM does not map."""
    return name.startswith(SEARCH_TABLES)


@dataclass(frozen=True)
class SearchHit:
    kind: str
    entity_id: str


def fts5_query(query: str) -> str:
    """Each word quoted, so user input is matched as words and never parsed as FTS5 syntax."""
    return " ".join(f'"{word}"' for word in re.findall(r"\w+", query))


async def index_document(session: AsyncSession, kind: str, entity_id: str, body: str) -> None:
    """Add or replace the searchable text of one user or post."""
    values = {"kind": kind, "entity_id": entity_id, "body": body}
    if dialect(session) == "sqlite":
        await session.execute(text("DELETE FROM search_index WHERE kind = :kind AND entity_id = :entity_id"), values)
        await session.execute(text("INSERT INTO search_index (kind, entity_id, body) VALUES (:kind, :entity_id, :body)"), values)
    else:
        await session.execute(
            text(
                "INSERT INTO search_documents (kind, entity_id, body) VALUES (:kind, :entity_id, :body) "
                "ON CONFLICT (kind, entity_id) DO UPDATE SET body = excluded.body"
            ),
            values,
        )


async def search(session: AsyncSession, query: str, kind: str | None = None, limit: int = 20) -> list[SearchHit]:
    """Best matches first; ``kind`` narrows to 'user' or 'post'."""
    if dialect(session) == "sqlite":
        terms = fts5_query(query)
        if not terms:
            return []
        statement = (
            "SELECT kind, entity_id FROM search_index WHERE search_index MATCH :query"
            + (" AND kind = :kind" if kind else "")
            + " ORDER BY rank LIMIT :limit"
        )
        parameters = {"query": terms, "kind": kind, "limit": limit}
    else:
        statement = (
            "SELECT kind, entity_id FROM search_documents, websearch_to_tsquery('english', :query) AS query "
            "WHERE tsv @@ query" + (" AND kind = :kind" if kind else "") + " ORDER BY ts_rank(tsv, query) DESC LIMIT :limit"
        )
        parameters = {"query": query, "kind": kind, "limit": limit}
    rows = await session.execute(text(statement), parameters)
    return [SearchHit(row.kind, row.entity_id) for row in rows]
