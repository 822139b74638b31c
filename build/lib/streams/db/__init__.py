"""Persistence: typed models, engines and sessions, and Alembic migrations."""
