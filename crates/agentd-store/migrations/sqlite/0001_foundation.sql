-- Tenants, people, credentials, agents, versions, invocations (the queue) and events.
-- Instants are unix milliseconds (INTEGER) so SQLite and PostgreSQL store the same value.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'active',
    limits      TEXT NOT NULL DEFAULT '{}',
    -- Denormalised from limits so the claim can enforce it in one statement.
    max_concurrent  INTEGER NOT NULL DEFAULT 10,
    -- When a run of this tenant was last claimed: claims go round-robin over tenants.
    last_claimed_at INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE memberships (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    user_id    TEXT NOT NULL REFERENCES users(id),
    role       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants(id),
    name         TEXT NOT NULL,
    prefix       TEXT NOT NULL UNIQUE,
    key_hash     TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, id);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    user_id    TEXT NOT NULL REFERENCES users(id),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE agents (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants(id),
    slug           TEXT NOT NULL,
    name           TEXT NOT NULL,
    description    TEXT,
    tags           TEXT NOT NULL DEFAULT '[]',
    visibility     TEXT NOT NULL DEFAULT 'private',
    status         TEXT NOT NULL DEFAULT 'active',
    active_version INTEGER,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    UNIQUE (tenant_id, slug)
);

-- Versions outlive their agent: invocations already accepted still run and keep history.
CREATE TABLE agent_versions (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    agent_id   TEXT NOT NULL,
    version    INTEGER NOT NULL,
    digest     TEXT NOT NULL,
    manifest   TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (agent_id, version)
);

-- One row per invocation; the queue is the subset in 'queued' or 'retrying'.
CREATE TABLE invocations (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    agent_id          TEXT NOT NULL,
    agent_slug        TEXT NOT NULL,
    version_id        TEXT NOT NULL,
    version           INTEGER NOT NULL,
    thread_id         TEXT,
    status            TEXT NOT NULL,
    input             TEXT NOT NULL,
    output            TEXT,
    error_code        TEXT,
    error_message     TEXT,
    priority          INTEGER NOT NULL DEFAULT 0,
    attempt           INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL DEFAULT 1,
    timeout_s         INTEGER NOT NULL,
    idempotency_key   TEXT,
    metadata          TEXT NOT NULL DEFAULT '{}',
    created_at        INTEGER NOT NULL,
    started_at        INTEGER,
    finished_at       INTEGER,
    run_after         INTEGER NOT NULL,
    lease_owner       TEXT,
    lease_expires_at  INTEGER,
    cancel_requested  INTEGER NOT NULL DEFAULT 0,
    wall_ms           INTEGER NOT NULL DEFAULT 0,
    cpu_ms            INTEGER NOT NULL DEFAULT 0,
    peak_memory_bytes INTEGER NOT NULL DEFAULT 0,
    log_bytes         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX invocations_tenant ON invocations (tenant_id, id);
CREATE INDEX invocations_ready ON invocations (tenant_id, status, priority DESC, id);
CREATE INDEX invocations_due ON invocations (status, run_after);
CREATE INDEX invocations_lease ON invocations (status, lease_expires_at);
CREATE UNIQUE INDEX invocations_idempotency ON invocations (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE invocation_events (
    invocation_id TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    tenant_id     TEXT NOT NULL,
    ts            INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    stream        TEXT NOT NULL,
    level         TEXT,
    message       TEXT,
    data          TEXT,
    PRIMARY KEY (invocation_id, seq)
);
