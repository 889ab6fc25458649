-- Schedules (docs/API.md, "Schedules"): a cron pattern in a time zone that invokes an
-- agent. `next_run_at` is the next occurrence (NULL while paused); the reconciler claims
-- an occurrence by moving it forward (compare-and-set on its old value) in the
-- transaction that inserts the occurrence's row below, so one replica alone acts on it.
CREATE TABLE schedules (
    id                 TEXT PRIMARY KEY,
    tenant_id          TEXT NOT NULL REFERENCES tenants(id),
    agent_slug         TEXT NOT NULL,
    cron               TEXT NOT NULL,
    timezone           TEXT NOT NULL,
    input              TEXT NOT NULL,
    enabled            BIGINT NOT NULL,
    overlap            TEXT NOT NULL,
    catchup            TEXT NOT NULL,
    metadata           TEXT NOT NULL DEFAULT '{}',
    next_run_at        BIGINT,
    last_run_at        BIGINT,
    last_invocation_id TEXT,
    last_error         TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX schedules_tenant ON schedules (tenant_id, id);
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE next_run_at IS NOT NULL;

-- One row per occurrence a replica claimed: keyed by schedule and scheduled time, so an
-- occurrence is claimed once. `outcome`: claimed (its invocation is being made),
-- invoked, skipped (overlap or catchup), refused (the invoke was refused: `error`).
-- The invocation is made in a transaction that sets `invocation_id` here only while it
-- is NULL, so a claim retried after a crash never makes a second one.
CREATE TABLE schedule_occurrences (
    schedule_id   TEXT NOT NULL REFERENCES schedules(id) ON DELETE CASCADE,
    scheduled_at  BIGINT NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    outcome       TEXT NOT NULL,
    invocation_id TEXT,
    error         TEXT,
    claimed_at    BIGINT NOT NULL,
    PRIMARY KEY (schedule_id, scheduled_at)
);
-- The orphan sweep reads the old `claimed` rows; the prune deletes rows older than a day.
CREATE INDEX schedule_occurrences_claimed ON schedule_occurrences (claimed_at);

-- The schedule and occurrence an invocation was made for.
ALTER TABLE invocations ADD COLUMN schedule_id TEXT;
ALTER TABLE invocations ADD COLUMN scheduled_at BIGINT;
CREATE INDEX invocations_schedule ON invocations (schedule_id, id) WHERE schedule_id IS NOT NULL;

-- Row-level security, as for every tenant table (0003).
GRANT SELECT, INSERT, UPDATE, DELETE ON schedules, schedule_occurrences TO agentd_tenant;
ALTER TABLE schedules ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON schedules TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));
ALTER TABLE schedule_occurrences ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON schedule_occurrences TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));
