//! Worker tokens: the credentials remote workers present. Created by the operator with
//! direct database access (`agentd admin workers create-token`); only the SHA-256 of the
//! token is stored.

use agentd_core::{Timestamp, WorkerTokenId};

use crate::{Result, Store};

impl Store {
    /// Records a new worker token whose SHA-256 is `token_hash`.
    pub async fn worker_token_create_unscoped(&self, name: &str, token_hash: &str) -> Result<WorkerTokenId> {
        let id = WorkerTokenId::generate();
        sqlx::query("INSERT INTO worker_tokens (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(id.as_str())
            .bind(name)
            .bind(token_hash)
            .bind(Timestamp::now().unix_ms())
            .execute(&self.writer)
            .await?;
        Ok(id)
    }

    /// The live worker token with this hash, if any.
    pub async fn worker_token_authenticate_unscoped(&self, token_hash: &str) -> Result<Option<WorkerTokenId>> {
        let id: Option<String> =
            sqlx::query_scalar("SELECT id FROM worker_tokens WHERE token_hash = $1 AND revoked_at IS NULL")
                .bind(token_hash)
                .fetch_optional(&self.reader)
                .await?;
        Ok(id.map(WorkerTokenId::from_trusted))
    }
}
