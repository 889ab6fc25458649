-- Invitations to join a workspace with a role. The token is shown once; only its SHA-256
-- is kept. An invite is pending until it is accepted, revoked or past `expires_at`.
-- `created_by` is the user or key that invited, or 'operator' for an owner invite an
-- operator made with `agentd admin tenants create`.
CREATE TABLE invites (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants(id),
    email       TEXT NOT NULL,
    role        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    accepted_at BIGINT,
    accepted_by TEXT,
    revoked_at  BIGINT
);
CREATE INDEX invites_tenant ON invites (tenant_id, id);
CREATE INDEX memberships_user ON memberships (user_id);

-- Row-level security, as for every tenant table (0003). Accepting an invite happens
-- before a tenant is known (the token names it), so it runs as the owner.
GRANT SELECT, INSERT, UPDATE, DELETE ON invites TO agentd_tenant;
ALTER TABLE invites ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invites TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));

-- Listing a workspace's members shows their email: a tenant may read who its members
-- are (never a password hash), always through a join on its own memberships.
GRANT SELECT (id, email, created_at) ON users TO agentd_tenant;
