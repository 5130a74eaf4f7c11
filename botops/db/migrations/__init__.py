"""botops' Alembic migrations: ``env.py``, the revision template and ``versions/``, shipped in the package.

Run them with ``botops db upgrade`` (or :mod:`botops.db.migrate`); there is no ``alembic.ini``, the
configuration is built in code so the database URL, which may hold a password, is never written down.
"""
