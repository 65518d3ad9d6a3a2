"""Alembic environment and revisions; `migrations.run` applies them from code."""
