"""The database: async engine (SQLite or PostgreSQL), the tables, and the Alembic migrations that own them.

``engine`` opens connections (SQLite with WAL, foreign keys and transactional DDL), ``schema`` declares
the tables for queries and for ``botops db check``, ``migrate`` moves the schema between revisions.
Nothing here imports discord.py.
"""
