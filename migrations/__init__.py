"""Alembic migrations of the escalation store (run with `escbot migrate`)."""
