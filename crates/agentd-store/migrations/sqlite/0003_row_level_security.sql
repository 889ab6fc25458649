-- Row-level security exists on PostgreSQL only (see postgres/0003_row_level_security.sql).
-- SQLite has no roles: one process owns the file, and the store's tenant filters are the
-- isolation. This no-op keeps both engines on the same migration numbers.
SELECT 1;
