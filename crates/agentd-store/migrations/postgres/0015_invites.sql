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

-- A workspace's members with their email. The tenant role never reads `users`; this
-- view (run with its owner's rights) shows it only the members of the tenant in
-- `agentd.tenant_id`, and nothing of a user but the email.
CREATE VIEW workspace_members AS
    SELECT m.tenant_id, m.user_id, u.email, m.role, m.created_at
    FROM memberships m JOIN users u ON u.id = m.user_id
    WHERE m.tenant_id = current_setting('agentd.tenant_id', true);
GRANT SELECT ON workspace_members TO agentd_tenant;
