-- Dependency installs: one per tenant and dependency digest (runtime and its version,
-- the dependency files, the package index settings), shared by every version of the
-- tenant with that digest and never across tenants. A failed build stays as history;
-- the next deploy of the same dependencies builds again, hence the partial unique index.
CREATE TABLE dependency_builds (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants(id),
    digest           TEXT NOT NULL,
    bundle_digest    TEXT NOT NULL,
    runtime          TEXT NOT NULL,
    plan             TEXT NOT NULL,
    installer        TEXT NOT NULL,
    warnings         TEXT NOT NULL,
    status           TEXT NOT NULL,
    error            TEXT,
    archive_digest   TEXT,
    installed_bytes  BIGINT,
    attempt          BIGINT NOT NULL DEFAULT 0,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    next_seq         BIGINT NOT NULL DEFAULT 1,
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT
);
CREATE UNIQUE INDEX dependency_builds_current ON dependency_builds (tenant_id, digest) WHERE status <> 'failed';
CREATE INDEX dependency_builds_claimable ON dependency_builds (status, created_at);

CREATE TABLE dependency_build_logs (
    build_id  TEXT NOT NULL REFERENCES dependency_builds(id),
    tenant_id TEXT NOT NULL REFERENCES tenants(id),
    seq       BIGINT NOT NULL,
    ts        BIGINT NOT NULL,
    stream    TEXT NOT NULL,
    message   TEXT NOT NULL,
    PRIMARY KEY (build_id, seq)
);

-- A version's build, copied onto it as the build moves on, so versions read without a
-- join. activate_when_ready: deployed to be active, which happens once the build is ready.
ALTER TABLE agent_versions ADD COLUMN build_id TEXT;
ALTER TABLE agent_versions ADD COLUMN build_status TEXT NOT NULL DEFAULT 'ready';
ALTER TABLE agent_versions ADD COLUMN build_error TEXT;
ALTER TABLE agent_versions ADD COLUMN dependencies_digest TEXT;
ALTER TABLE agent_versions ADD COLUMN dependencies_archive TEXT;
ALTER TABLE agent_versions ADD COLUMN installer TEXT;
ALTER TABLE agent_versions ADD COLUMN build_warnings TEXT NOT NULL DEFAULT '[]';
ALTER TABLE agent_versions ADD COLUMN activate_when_ready BIGINT NOT NULL DEFAULT 0;
CREATE INDEX agent_versions_build ON agent_versions (build_id);

-- Row-level security, as for every tenant table (0003). Builds are created by tenants'
-- deploys; claimed, logged and finished by the worker path, which runs as the owner.
GRANT SELECT, INSERT ON dependency_builds TO agentd_tenant;
GRANT SELECT ON dependency_build_logs TO agentd_tenant;
ALTER TABLE dependency_builds ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dependency_builds TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));
ALTER TABLE dependency_build_logs ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dependency_build_logs TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));
