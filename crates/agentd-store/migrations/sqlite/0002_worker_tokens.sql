-- Credentials of remote workers: they pull work over HTTP and hold no database access.
CREATE TABLE worker_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
