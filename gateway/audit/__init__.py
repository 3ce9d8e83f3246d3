"""The append-only audit log: records and their stores (SQLite, PostgreSQL)."""
