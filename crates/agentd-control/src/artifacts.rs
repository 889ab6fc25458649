//! The files an invocation left in `/outputs`: listed by name, read back as bytes.

use agentd_core::{Artifact, ArtifactName, InvocationId, NameCursor, Page, PageRequest, ResourceKind};
use bytes::Bytes;

use crate::Control;
use crate::auth::{Ctx, Read};
use crate::error::{ControlError, Result};

/// One artifact with its bytes.
#[derive(Debug, Clone)]
pub struct ArtifactContent {
    pub artifact: Artifact,
    pub bytes: Bytes,
}

impl Control {
    pub async fn artifacts_list(
        &self,
        ctx: &Ctx<Read>,
        id: &InvocationId,
        page: &PageRequest<NameCursor>,
    ) -> Result<Page<Artifact>> {
        Ok(self.store.artifacts_list(ctx.store_scope(), id, page).await?)
    }

    /// A name that cannot be an artifact's names none: `NotFound`, like an unknown one.
    pub async fn artifact_read(&self, ctx: &Ctx<Read>, id: &InvocationId, name: &str) -> Result<ArtifactContent> {
        let name = ArtifactName::parse(name).ok_or(ControlError::NotFound(ResourceKind::Artifact))?;
        let artifact = self.store.artifact_get(ctx.store_scope(), id, &name).await?;
        let bytes = self.blobs.get(&artifact.digest).await?;
        Ok(ArtifactContent { artifact, bytes })
    }
}
