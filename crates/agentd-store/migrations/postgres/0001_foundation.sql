-- Tenants, people, credentials, agents, versions, invocations (the queue) and events.
-- Instants are unix milliseconds (BIGINT) so SQLite and PostgreSQL store the same value.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'active',
    limits      TEXT NOT NULL DEFAULT '{}',
    -- Denormalised from limits so the claim can enforce it in one statement.
    max_concurrent  BIGINT NOT NULL DEFAULT 10,
    -- When a run of this tenant was last claimed: claims go round-robin over tenants.
    last_claimed_at BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

CREATE TABLE memberships (
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    user_id    TEXT NOT NULL REFERENCES users(id),
    role       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
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
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, id);

CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    user_id    TEXT NOT NULL REFERENCES users(id),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
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
    active_version BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (tenant_id, slug)
);

-- Versions outlive their agent: invocations already accepted still run and keep history.
CREATE TABLE agent_versions (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    agent_id   TEXT NOT NULL,
    version    BIGINT NOT NULL,
    digest     TEXT NOT NULL,
    manifest   TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (agent_id, version)
);

-- One row per invocation; the queue is the subset in 'queued' or 'retrying'.
CREATE TABLE invocations (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants(id),
    agent_id          TEXT NOT NULL,
    agent_slug        TEXT NOT NULL,
    version_id        TEXT NOT NULL,
    version           BIGINT NOT NULL,
    thread_id         TEXT,
    status            TEXT NOT NULL,
    input             TEXT NOT NULL,
    output            TEXT,
    error_code        TEXT,
    error_message     TEXT,
    priority          BIGINT NOT NULL DEFAULT 0,
    attempt           BIGINT NOT NULL DEFAULT 0,
    max_attempts      BIGINT NOT NULL DEFAULT 1,
    timeout_s         BIGINT NOT NULL,
    idempotency_key   TEXT,
    metadata          TEXT NOT NULL DEFAULT '{}',
    created_at        BIGINT NOT NULL,
    started_at        BIGINT,
    finished_at       BIGINT,
    run_after         BIGINT NOT NULL,
    lease_owner       TEXT,
    lease_expires_at  BIGINT,
    cancel_requested  BIGINT NOT NULL DEFAULT 0,
    wall_ms           BIGINT NOT NULL DEFAULT 0,
    cpu_ms            BIGINT NOT NULL DEFAULT 0,
    peak_memory_bytes BIGINT NOT NULL DEFAULT 0,
    log_bytes         BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX invocations_tenant ON invocations (tenant_id, id);
CREATE INDEX invocations_ready ON invocations (tenant_id, status, priority DESC, id);
CREATE INDEX invocations_due ON invocations (status, run_after);
CREATE INDEX invocations_lease ON invocations (status, lease_expires_at);
CREATE UNIQUE INDEX invocations_idempotency ON invocations (tenant_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE invocation_events (
    invocation_id TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    tenant_id     TEXT NOT NULL,
    ts            BIGINT NOT NULL,
    kind          TEXT NOT NULL,
    stream        TEXT NOT NULL,
    level         TEXT,
    message       TEXT,
    data          TEXT,
    PRIMARY KEY (invocation_id, seq)
);
