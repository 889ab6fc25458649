-- An agent's secrets, encrypted by the domain (XChaCha20-Poly1305 under the master key
-- `key_id` names; the associated data binds tenant, agent and name). The store keeps
-- opaque bytes and never sees a value. Deleting the agent deletes its secrets.
CREATE TABLE agent_secrets (
    agent_id   TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    tenant_id  TEXT NOT NULL REFERENCES tenants(id),
    ciphertext BLOB NOT NULL,
    nonce      BLOB NOT NULL,
    key_id     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (agent_id, name)
);
-- Rotation finds the secrets still sealed under an old key.
CREATE INDEX agent_secrets_key ON agent_secrets (key_id);
