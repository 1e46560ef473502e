"""SQLite's execution paths: the engine and its pragmas (engine.py), the in-loop driver (inline.py),
and the session that runs on the event loop (loop_session.py). storage/db.py chooses among them."""
