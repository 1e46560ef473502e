"""PostgreSQL's execution path: transactions whose BEGIN, COMMIT and hottest statements go to asyncpg
directly (session.py). storage/db.py chooses it for a `postgresql+asyncpg` URL."""
