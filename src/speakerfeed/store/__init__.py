"""The subscriber store: one SQLAlchemy Core schema on SQLite or PostgreSQL, Alembic migrations.

``schema`` declares the tables, ``engine`` connects and migrates, ``subscribers`` holds the
repository functions (each takes a ``Connection``; the caller owns the transaction).
"""
