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
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    accepted_at INTEGER,
    accepted_by TEXT,
    revoked_at  INTEGER
);
CREATE INDEX invites_tenant ON invites (tenant_id, id);
CREATE INDEX memberships_user ON memberships (user_id);

-- A workspace's members with their email (on PostgreSQL it also confines the tenant
-- role to its own tenant's members; queries filter on tenant_id on both engines).
CREATE VIEW workspace_members AS
    SELECT m.tenant_id, m.user_id, u.email, m.role, m.created_at
    FROM memberships m JOIN users u ON u.id = m.user_id;
