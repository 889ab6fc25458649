-- Operators: the people who run the platform. Their tokens authenticate /v1/admin/* only
-- and belong to no tenant; only the SHA-256 of a token is stored.
CREATE TABLE operator_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

-- Worker processes as they were last seen: a claim or a lease renewal records the
-- process (its lease owner, the worker token's id and the process's own name) and its
-- run slots, at most every few seconds per process.
CREATE TABLE workers (
    lease_owner     TEXT PRIMARY KEY,
    worker_token_id TEXT,
    name            TEXT NOT NULL,
    slots           INTEGER,
    first_seen_at   INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL
);
CREATE INDEX workers_last_seen ON workers (last_seen_at);

-- When each run was last claimed, for the queue's claim rate; set by the claim itself.
ALTER TABLE invocations ADD COLUMN claimed_at INTEGER;
CREATE INDEX invocations_claimed ON invocations (claimed_at) WHERE claimed_at IS NOT NULL;

-- When a tenant was suspended (NULL while active).
ALTER TABLE tenants ADD COLUMN suspended_at INTEGER;
