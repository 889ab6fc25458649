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
    enabled              BIGINT NOT NULL DEFAULT 1,
    disabled_reason      TEXT,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    ciphertext           BYTEA NOT NULL,
    nonce                BYTEA NOT NULL,
    key_id               TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, id);

CREATE TABLE webhook_invocation_secrets (
    tenant_id  TEXT PRIMARY KEY REFERENCES tenants(id),
    ciphertext BYTEA NOT NULL,
    nonce      BYTEA NOT NULL,
    key_id     TEXT NOT NULL,
    created_at BIGINT NOT NULL
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
    occurred_at      BIGINT NOT NULL,
    -- pending (due at next_attempt_at), succeeded, failed.
    status           TEXT NOT NULL DEFAULT 'pending',
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    -- Retries stop once this is older than the retry window (a redelivery restarts it).
    window_started_at BIGINT,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    payload          TEXT,
    created_at       BIGINT NOT NULL,
    finished_at      BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (tenant_id, endpoint_id, id);
CREATE INDEX webhook_deliveries_invocation ON webhook_deliveries (invocation_id);

CREATE TABLE webhook_delivery_attempts (
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
    n           BIGINT NOT NULL,
    tenant_id   TEXT NOT NULL,
    at          BIGINT NOT NULL,
    status_code BIGINT,
    latency_ms  BIGINT NOT NULL,
    error       TEXT,
    PRIMARY KEY (delivery_id, n)
);

-- The outbox: whatever statement moves an invocation to a terminal status or to
-- waiting_for_input writes its deliveries in the same transaction, so a change that
-- rolls back sends nothing and one that commits is delivered even if the process dies
-- right after. Ids are 12 hex digits of milliseconds then 20 random ones (time-ordered,
-- like the ids the code makes). The function runs as the caller: inside a tenant's
-- scoped transaction row-level security applies to what it reads and writes.
CREATE FUNCTION invocations_webhook_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    now_ms BIGINT := (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT;
BEGIN
    INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, url, invocation_id, event_type, occurred_at,
        next_attempt_at, created_at)
    SELECT 'dlv_' || lpad(to_hex(now_ms), 12, '0') || substr(md5(random()::text || e.id), 1, 20),
        NEW.tenant_id, e.id, NULL, NEW.id, 'invocation.' || NEW.status, now_ms, now_ms, now_ms
    FROM webhook_endpoints e
    WHERE e.tenant_id = NEW.tenant_id AND e.enabled = 1
      AND position(',invocation.' || NEW.status || ',' IN ',' || e.events || ',') > 0;
    IF NEW.webhook_url IS NOT NULL THEN
        INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, url, invocation_id, event_type, occurred_at,
            next_attempt_at, created_at)
        VALUES ('dlv_' || lpad(to_hex(now_ms), 12, '0') || substr(md5(random()::text || NEW.id), 1, 20),
            NEW.tenant_id, NULL, NEW.webhook_url, NEW.id, 'invocation.' || NEW.status, now_ms, now_ms, now_ms);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER invocations_webhook_outbox AFTER UPDATE OF status ON invocations
    FOR EACH ROW
    WHEN (NEW.status IN ('succeeded', 'failed', 'cancelled', 'timed_out', 'waiting_for_input')
          AND OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION invocations_webhook_outbox();

-- Row-level security, as for every tenant table (0003). Deliveries are written by the
-- trigger above (in a tenant's transaction or the owner's) and sent by the reconciler,
-- which runs as the owner.
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_endpoints TO agentd_tenant;
ALTER TABLE webhook_endpoints ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_endpoints TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_invocation_secrets TO agentd_tenant;
ALTER TABLE webhook_invocation_secrets ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_invocation_secrets TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_deliveries TO agentd_tenant;
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_deliveries TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));
GRANT SELECT, INSERT, DELETE ON webhook_delivery_attempts TO agentd_tenant;
ALTER TABLE webhook_delivery_attempts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_delivery_attempts TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));
