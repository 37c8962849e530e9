"""Persistence: the SQLAlchemy models, the engine and migration checks."""
