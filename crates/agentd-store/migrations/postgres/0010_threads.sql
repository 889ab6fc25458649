-- Threads: conversations across invocations of one agent. A thread's state is its latest
-- checkpoint that counts (see `threads.rs`): checkpoints of a run that failed, timed out or
-- was cancelled are kept but no longer count, so such a run leaves the state as it was.
CREATE TABLE threads (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    agent_id    TEXT,
    agent_slug  TEXT,
    metadata    TEXT NOT NULL DEFAULT '{}',
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX threads_tenant ON threads (tenant_id, id);

-- One checkpoint per settled run of the thread (and per state set by hand, with no
-- invocation), numbered from 1 per thread.
CREATE TABLE thread_checkpoints (
    thread_id     TEXT NOT NULL REFERENCES threads(id) ON DELETE CASCADE,
    seq           BIGINT NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    state         TEXT NOT NULL,
    invocation_id TEXT,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (thread_id, seq)
);

-- A thread's runs in order: a run is claimable only when no earlier run of its thread is
-- still going.
CREATE INDEX invocations_thread ON invocations (thread_id, id) WHERE thread_id IS NOT NULL;

-- Row-level security, as for every tenant table (0003).
GRANT SELECT, INSERT, UPDATE, DELETE ON threads, thread_checkpoints TO agentd_tenant;
ALTER TABLE threads ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON threads TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));
ALTER TABLE thread_checkpoints ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON thread_checkpoints TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));
