"""Persistence: the async engine and sessions, sqlmodel tables, repositories and migrations.

Nothing here imports `bot`; handlers reach the database only through these repositories.
"""
