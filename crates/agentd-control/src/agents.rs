//! The agent registry and deploying to it: agents by slug within a tenant, their
//! immutable versions, and uploads checked before anything is written, so a rejected
//! bundle leaves nothing behind.

use agentd_bundle::{BundleLimits, Manifest, Runtime};
use agentd_core::{Agent, AgentId, AgentStatus, AgentVersion, Page, PageRequest, Slug, Visibility};
use agentd_store::{AgentPatch, NewAgent, NewVersion, StoreError};
use bytes::Bytes;

use crate::Control;
use crate::auth::{Ctx, Deploy, Read};
use crate::error::{ControlError, Invalid, QuotaExceeded, Result};
use crate::input::{AgentName, Description, EnvVars, SchemaChange, Tags, WaitTime};

/// An agent to create. Without a name it is named by its slug.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    pub slug: Slug,
    pub name: Option<AgentName>,
    pub description: Option<Description>,
    pub tags: Tags,
    pub visibility: Visibility,
}

/// Changes to an agent; `None` keeps a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AgentChanges {
    pub name: Option<AgentName>,
    pub description: Option<Description>,
    pub tags: Option<Tags>,
    pub visibility: Option<Visibility>,
    pub status: Option<AgentStatus>,
    /// Replaces the agent's whole `config.env` (empty clears it).
    pub env: Option<EnvVars>,
    pub input_schema: Option<SchemaChange>,
    pub output_schema: Option<SchemaChange>,
}

/// A schema change as the store takes it: `Some(None)` clears.
fn schema_patch(change: Option<SchemaChange>) -> Option<Option<serde_json::Value>> {
    change.map(|change| match change {
        SchemaChange::Set(schema) => Some(schema.into_inner()),
        SchemaChange::Clear => None,
    })
}

/// Whether a new version becomes the one invocations run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Activate,
    /// Upload only; activate later (or never).
    Keep,
}

/// An interpreter the platform runs agents with, as `GET /v1/runtimes` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeInfo {
    pub runtime: &'static str,
    /// The interpreter's version; `None` for `shell` and `binary`, or when not found.
    pub version: Option<String>,
    pub available: bool,
}

impl Control {
    /// The runtimes this platform's hosts run agents with. The versions are the server
    /// host's; remote workers are expected to run the same image.
    pub fn runtimes(&self, _ctx: &Ctx<Read>) -> Vec<RuntimeInfo> {
        Runtime::ALL
            .into_iter()
            .map(|runtime| {
                let version = self.settings.runtime_versions.get(runtime.as_str()).cloned();
                let available = matches!(runtime, Runtime::Shell | Runtime::Binary) || version.is_some();
                RuntimeInfo { runtime: runtime.as_str(), version, available }
            })
            .collect()
    }

    /// Refuses a manifest whose `python = "…"` or `node = "…"` this platform cannot
    /// satisfy, at deploy rather than at the first run. An interpreter whose version is
    /// not known here (a server without it, whose workers have it) is not checked.
    fn check_runtime_version(&self, manifest: &Manifest) -> Result<()> {
        let Some(asked) = &manifest.runtime_version else { return Ok(()) };
        let runtime = manifest.runtime.as_str();
        match self.settings.runtime_versions.get(runtime) {
            Some(have) if !asked.matches(have) => Err(Invalid::RuntimeUnavailable {
                runtime: runtime.to_owned(),
                asked: asked.to_string(),
                available: have.clone(),
            }
            .into()),
            _ => Ok(()),
        }
    }

    pub async fn agent_create(&self, ctx: &Ctx<Deploy>, spec: AgentSpec) -> Result<Agent> {
        let name = spec.name.map_or_else(|| spec.slug.to_string(), AgentName::into_inner);
        let new = NewAgent {
            slug: spec.slug,
            name,
            description: spec.description.map(Description::into_inner),
            tags: spec.tags.into_inner(),
            visibility: spec.visibility,
        };
        let limit = ctx.limits().max_agents;
        self.store.agent_create(ctx.store_scope(), new, limit).await.map_err(|e| match e {
            StoreError::QuotaReached { count } => QuotaExceeded::Agents { count, limit }.into(),
            other => ControlError::from(other),
        })
    }

    pub async fn agents_list(&self, ctx: &Ctx<Read>, page: &PageRequest<AgentId>) -> Result<Page<Agent>> {
        Ok(self.store.agents_list(ctx.store_scope(), page).await?)
    }

    pub async fn agent_get(&self, ctx: &Ctx<Read>, slug: &Slug) -> Result<Agent> {
        Ok(self.store.agent_get(ctx.store_scope(), slug).await?)
    }

    pub async fn agent_patch(&self, ctx: &Ctx<Deploy>, slug: &Slug, changes: AgentChanges) -> Result<Agent> {
        let patch = AgentPatch {
            name: changes.name.map(AgentName::into_inner),
            description: changes.description.map(Description::into_inner),
            tags: changes.tags.map(Tags::into_inner),
            visibility: changes.visibility,
            status: changes.status,
            env: changes.env.map(EnvVars::into_inner),
            input_schema: schema_patch(changes.input_schema),
            output_schema: schema_patch(changes.output_schema),
        };
        Ok(self.store.agent_patch(ctx.store_scope(), slug, &patch).await?)
    }

    /// Removes the agent from the registry; its versions and invocations remain.
    pub async fn agent_delete(&self, ctx: &Ctx<Deploy>, slug: &Slug) -> Result<()> {
        Ok(self.store.agent_delete(ctx.store_scope(), slug).await?)
    }

    pub async fn versions_list(
        &self,
        ctx: &Ctx<Read>,
        slug: &Slug,
        page: &PageRequest<u32>,
    ) -> Result<Page<AgentVersion>> {
        Ok(self.store.versions_list(ctx.store_scope(), slug, page).await?)
    }

    /// Makes version `n` the one new invocations run: a deploy or a rollback.
    pub async fn version_activate(&self, ctx: &Ctx<Deploy>, slug: &Slug, n: u32) -> Result<Agent> {
        Ok(self.store.version_activate(ctx.store_scope(), slug, n).await?)
    }

    /// Checks a bundle, stores it content-addressed and records it as the agent's next
    /// version. Nothing is written for a bundle that fails a check.
    pub async fn deploy(
        &self,
        ctx: &Ctx<Deploy>,
        slug: &Slug,
        bundle: Bytes,
        activation: Activation,
        wait: Option<WaitTime>,
    ) -> Result<AgentVersion> {
        // Fail on a missing agent before spending CPU on the archive.
        self.store.agent_get(ctx.store_scope(), slug).await?;
        let limit = ctx.limits().max_bundle_bytes.min(self.settings.max_upload_bytes);
        let size = bundle.len() as u64;
        if size > limit {
            return Err(ControlError::BundleTooLarge { size, limit });
        }
        if bundle.is_empty() {
            return Err(Invalid::EmptyBundle.into());
        }
        let limits = BundleLimits { max_bundle_bytes: limit, ..BundleLimits::default() };
        let checked = bundle.clone();
        let inspected = tokio::task::spawn_blocking(move || agentd_bundle::inspect(&checked, &limits))
            .await
            .map_err(ControlError::internal)??;
        // Refused before anything is stored: a runtime this platform does not have, a
        // bundle whose dependencies cannot be installed.
        self.check_runtime_version(&inspected.manifest)?;
        let build = self.build_for(&inspected, &inspected.digest)?;
        let storage_limit = ctx.limits().max_storage_bytes;
        self.check_storage(ctx.store_scope(), storage_limit, &inspected.digest, size).await?;
        let digest = self.blob_put(bundle).await?;
        let manifest = serde_json::to_value(&inspected.manifest).map_err(ControlError::internal)?;
        let activate = activation == Activation::Activate;
        let new = NewVersion { digest, manifest, size_bytes: size, activate, build };
        let version = self.store.version_create(ctx.store_scope(), slug, new).await?;
        ctx.span().in_scope(
            || tracing::info!(agent = %slug, version = version.version, build = %version.build.status, "deployed"),
        );
        match wait {
            Some(wait) if !version.build.status.is_settled() => {
                self.version_wait_built(ctx, slug, version.version, wait.get()).await
            }
            _ => Ok(version),
        }
    }
}
