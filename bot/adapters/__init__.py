"""Platform adapters: thin I/O classes plus pure translation functions (payload <-> events)."""
