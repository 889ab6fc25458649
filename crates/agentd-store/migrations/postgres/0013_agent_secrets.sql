-- An agent's secrets, encrypted by the domain (XChaCha20-Poly1305 under the master key
-- `key_id` names; the associated data binds tenant, agent and name). The store keeps
-- opaque bytes and never sees a value. Deleting the agent deletes its secrets.
CREATE TABLE agent_secrets (
    agent_id   TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    ciphertext BYTEA NOT NULL,
    nonce      BYTEA NOT NULL,
    key_id     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (agent_id, name)
);
-- Rotation finds the secrets still sealed under an old key.
CREATE INDEX agent_secrets_key ON agent_secrets (key_id);

-- Row-level security, as for every tenant table (0003). Tenants set, list and delete
-- their secrets; the claim reads them as the owner, for the run it hands out.
GRANT SELECT, INSERT, UPDATE, DELETE ON agent_secrets TO agentd_tenant;
ALTER TABLE agent_secrets ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON agent_secrets TO agentd_tenant
    USING (tenant_id = current_setting('agentd.tenant_id', true))
    WITH CHECK (tenant_id = current_setting('agentd.tenant_id', true));
