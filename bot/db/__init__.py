"""The store: SQLAlchemy models, engine, migrations and the audit chain."""
