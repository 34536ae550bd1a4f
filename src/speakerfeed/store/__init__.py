"""The store: one SQLAlchemy Core schema on SQLite or PostgreSQL, Alembic migrations; the only
package that runs SQL (an import-linter contract keeps ``schema`` to it).

``schema`` declares the tables, ``engine`` connects and migrates; ``subscribers`` (with the one
address hasher), ``memberships``, ``suppressions``, ``people``, ``importer`` and
``import_writers``, ``rate_limits``, ``leader``, ``sends``, ``schedules``, ``webhook_events``,
``inclusions`` (which articles went into which digest) and the delivery ``ledger`` hold the
repository functions (each takes a ``Connection`` or an ``Engine``; with a ``Connection`` the
caller owns the transaction).
"""
