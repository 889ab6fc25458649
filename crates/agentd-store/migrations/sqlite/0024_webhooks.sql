-- Outbound webhooks: a tenant's endpoints, the secret that signs per-invocation
-- `webhook_url` deliveries, and the outbox of deliveries with their attempts.
--
-- Signing secrets are sealed by the domain under the master key (as agent secrets are,
-- migration 0013): the store keeps opaque bytes.
CREATE TABLE webhook_endpoints (
    id                   TEXT PRIMARY KEY,
    tenant_id            TEXT NOT NULL REFERENCES tenants(id),
    url                  TEXT NOT NULL,
    -- Comma-separated event types (`invocation.succeeded,invocation.failed`); the names
    -- are a fixed set without commas.
    events               TEXT NOT NULL,
    description          TEXT,
    enabled              INTEGER NOT NULL DEFAULT 1,
    disabled_reason      TEXT,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    ciphertext           BLOB NOT NULL,
    nonce                BLOB NOT NULL,
    key_id               TEXT NOT NULL,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, id);

CREATE TABLE webhook_invocation_secrets (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants(id),
    ciphertext BLOB NOT NULL,
    nonce      BLOB NOT NULL,
    key_id     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

ALTER TABLE invocations ADD COLUMN webhook_url TEXT;

-- One row per message: an event of one invocation for one endpoint (or for the
-- invocation's own `webhook_url` when `endpoint_id` is NULL). Its id is the message's
-- `webhook-id`, the same on every attempt and redelivery. `payload` is frozen at the
-- first attempt, so retries send the same body.
CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    endpoint_id      TEXT REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    url              TEXT,
    invocation_id    TEXT NOT NULL,
    event_type       TEXT NOT NULL,
    occurred_at      INTEGER NOT NULL,
    -- pending (due at next_attempt_at), succeeded, failed.
    status           TEXT NOT NULL DEFAULT 'pending',
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    -- Retries stop once this is older than the retry window (a redelivery restarts it).
    window_started_at INTEGER,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    payload          TEXT,
    created_at       INTEGER NOT NULL,
    finished_at      INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (tenant_id, endpoint_id, id);
CREATE INDEX webhook_deliveries_invocation ON webhook_deliveries (invocation_id);

CREATE TABLE webhook_delivery_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    n           INTEGER NOT NULL,
    tenant_id   TEXT NOT NULL,
    at          INTEGER NOT NULL,
    status_code INTEGER,
    latency_ms  INTEGER NOT NULL,
    error       TEXT,
    PRIMARY KEY (delivery_id, n)
);

-- The outbox: whatever statement moves an invocation to a terminal status or to
-- waiting_for_input writes its deliveries in the same transaction, so a change that
-- rolls back sends nothing and one that commits is delivered even if the process dies
-- right after. Ids are 12 hex digits of milliseconds then 20 random ones (time-ordered,
-- like the ids the code makes).
CREATE TRIGGER invocations_webhook_outbox AFTER UPDATE OF status ON invocations
    WHEN NEW.status IN ('succeeded', 'failed', 'cancelled', 'timed_out', 'waiting_for_input')
     AND OLD.status <> NEW.status
BEGIN
    INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, url, invocation_id, event_type, occurred_at,
        next_attempt_at, created_at)
    SELECT 'dlv_' || printf('%012x', CAST(unixepoch('subsec') * 1000 AS INTEGER)) || lower(hex(randomblob(10))),
        NEW.tenant_id, e.id, NULL, NEW.id, 'invocation.' || NEW.status,
        CAST(unixepoch('subsec') * 1000 AS INTEGER), CAST(unixepoch('subsec') * 1000 AS INTEGER),
        CAST(unixepoch('subsec') * 1000 AS INTEGER)
    FROM webhook_endpoints e
    WHERE e.tenant_id = NEW.tenant_id AND e.enabled = 1
      AND instr(',' || e.events || ',', ',invocation.' || NEW.status || ',') > 0;
    INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, url, invocation_id, event_type, occurred_at,
        next_attempt_at, created_at)
    SELECT 'dlv_' || printf('%012x', CAST(unixepoch('subsec') * 1000 AS INTEGER)) || lower(hex(randomblob(10))),
        NEW.tenant_id, NULL, NEW.webhook_url, NEW.id, 'invocation.' || NEW.status,
        CAST(unixepoch('subsec') * 1000 AS INTEGER), CAST(unixepoch('subsec') * 1000 AS INTEGER),
        CAST(unixepoch('subsec') * 1000 AS INTEGER)
    WHERE NEW.webhook_url IS NOT NULL;
END;
