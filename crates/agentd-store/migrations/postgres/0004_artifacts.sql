-- Files an invocation left in /outputs. The bytes live in the blob store under `digest`;
-- a later attempt that writes the same name replaces the row.
CREATE TABLE invocation_artifacts (
    invocation_id TEXT NOT NULL REFERENCES invocations(id),
    name          TEXT NOT NULL,
    tenant_id     TEXT NOT NULL REFERENCES tenants(id),
    size          BIGINT NOT NULL,
    digest        TEXT NOT NULL,
    attempt       BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (invocation_id, name)
);

-- Row-level security, as for every tenant table (0003). Artifacts are written by the
-- worker path, which runs as the owner; tenants only read them.
GRANT SELECT ON invocation_artifacts TO agentd_tenant;
ALTER TABLE invocation_artifacts ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invocation_artifacts TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));
