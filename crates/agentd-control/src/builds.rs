//! Dependency builds from the domain's side: the build a deploy needs, waiting for it,
//! reading and following its log, and the worker protocol for builds (claim, log with
//! heartbeat, finish), fenced by the build's lease like a run's.

use std::collections::VecDeque;
use std::time::Duration;

use agentd_bundle::InspectedBundle;
use agentd_core::queue::{BuildLease, BuildOutcome, ClaimedBuild};
use agentd_core::{
    AgentVersion, BuildLogLine, BuildStatus, DependencyBuild, ResourceKind, Slug, TenantLimits, TenantScope,
};
use agentd_store::{BuildClaim, NewBuild, Store, Subscription};
use bytes::Bytes;
use tokio::time::Instant;

use crate::Control;
use crate::auth::{Ctx, Read, WorkerCtx};
use crate::error::{ControlError, Result};
use crate::runs::{LeaseLength, MAX_CLAIM_WAIT, WorkerName};
use crate::wait::{self, Step};

/// The most log lines one read returns.
const LOG_PAGE: u32 = 1000;
/// The most log lines a build's page shows; the SSE stream has them all.
const LOG_SHOWN: usize = 10_000;

/// A version's build with its log, as `GET …/versions/{n}/build` shows it.
#[derive(Debug, Clone)]
pub struct VersionBuildView {
    pub version: AgentVersion,
    /// `None` for a version with nothing to install.
    pub build: Option<DependencyBuild>,
    pub log: Vec<BuildLogLine>,
}

/// How a build ended, as a worker reports it.
#[derive(Debug, Clone)]
pub enum BuildResult {
    /// The installed tree, as a `.tar.gz`, and the size of its files.
    Ready {
        archive: Bytes,
        installed_bytes: u64,
    },
    Failed {
        error: String,
    },
}

/// What a build follower yields next.
#[derive(Debug, Clone)]
pub enum BuildFollowed {
    Line(BuildLogLine),
    /// The build is over and every line of it was yielded.
    End {
        status: BuildStatus,
        error: Option<String>,
    },
}

/// A live reader of one version's build log.
pub struct BuildFollower {
    store: Store,
    scope: TenantScope,
    build: Option<agentd_core::BuildId>,
    after: u64,
    changes: Subscription<u64>,
    pending: VecDeque<BuildLogLine>,
    ended: bool,
}

impl Control {
    /// The build a checked bundle needs, or `None` when it has nothing to install.
    pub(crate) fn build_for(&self, inspected: &InspectedBundle, bundle_digest: &str) -> Result<Option<NewBuild>> {
        let Some(plan) = inspected.dependency_plan()? else { return Ok(None) };
        let runtime = inspected.manifest.runtime.as_str();
        let indexes = &self.settings.package_indexes;
        let index = match runtime {
            "node" => indexes.npm_registry.as_str(),
            _ => indexes.python_index_url.as_str(),
        };
        let version = self.settings.runtime_versions.get(runtime).map_or("unknown", String::as_str);
        let context = format!("{runtime} {version}; index {index}; offline {}", indexes.offline);
        Ok(Some(NewBuild {
            digest: inspected.dependency_digest(&plan, &context),
            bundle_digest: bundle_digest.to_owned(),
            runtime: runtime.to_owned(),
            plan: serde_json::to_value(&plan).map_err(ControlError::internal)?,
            installer: plan.describe(),
            warnings: plan.warnings(),
        }))
    }

    /// Waits up to `wait` for version `n`'s build to settle and returns the version as it
    /// then is.
    pub(crate) async fn version_wait_built<C>(
        &self,
        ctx: &Ctx<C>,
        slug: &Slug,
        n: u32,
        wait: Duration,
    ) -> Result<AgentVersion> {
        let deadline = Instant::now() + wait;
        let mut changes = self.store.subscribe_builds();
        let agent = self.store.agent_get(ctx.store_scope(), slug).await?;
        let settled = wait::until(&mut changes, Some(deadline), wait::BACKSTOP, || async {
            let version = self.store.version_get(ctx.store_scope(), &agent, n).await?;
            Ok(match version.build.status.is_settled() {
                true => Step::Ready(version),
                false => Step::PENDING,
            })
        })
        .await?;
        match settled {
            Some(version) => Ok(version),
            None => Ok(self.store.version_get(ctx.store_scope(), &agent, n).await?),
        }
    }

    /// Version `n`'s build and its log (the first 10 000 lines).
    pub async fn version_build(&self, ctx: &Ctx<Read>, slug: &Slug, n: u32) -> Result<VersionBuildView> {
        let agent = self.store.agent_get(ctx.store_scope(), slug).await?;
        let version = self.store.version_get(ctx.store_scope(), &agent, n).await?;
        let Some(id) = version.build.id.clone() else {
            return Ok(VersionBuildView { version, build: None, log: Vec::new() });
        };
        let build = self.store.build_get(ctx.store_scope(), &id).await?;
        let mut log = Vec::new();
        while log.len() < LOG_SHOWN {
            let after = log.last().map_or(0, |line: &BuildLogLine| line.seq);
            let page = self.store.build_log(ctx.store_scope(), &id, after, LOG_PAGE).await?;
            let full = page.len() == LOG_PAGE as usize;
            log.extend(page);
            if !full {
                break;
            }
        }
        log.truncate(LOG_SHOWN);
        Ok(VersionBuildView { version, build: Some(build), log })
    }

    /// Follows version `n`'s build log after line `after` (0: from the first).
    pub async fn follow_build(&self, ctx: &Ctx<Read>, slug: &Slug, n: u32, after: u64) -> Result<BuildFollower> {
        let changes = self.store.subscribe_builds();
        let agent = self.store.agent_get(ctx.store_scope(), slug).await?;
        let version = self.store.version_get(ctx.store_scope(), &agent, n).await?;
        Ok(BuildFollower {
            store: self.store.clone(),
            scope: ctx.store_scope().clone(),
            build: version.build.id,
            after,
            changes,
            pending: VecDeque::new(),
            ended: false,
        })
    }

    /// Claims a pending build for `name`, waiting up to `wait` (at most 30 s) for one.
    pub async fn build_claim(
        &self,
        worker: &WorkerCtx,
        name: &WorkerName,
        lease: LeaseLength,
        wait: Duration,
    ) -> Result<Option<ClaimedBuild>> {
        let owner = worker.lease_owner(name.as_str());
        let deadline = Instant::now() + wait.min(MAX_CLAIM_WAIT);
        let mut changes = self.store.subscribe_builds();
        let claimed = wait::until(&mut changes, Some(deadline), wait::BACKSTOP * 5, || async {
            Ok(match self.store.build_claim_unscoped(&owner, lease.get()).await? {
                Some(claim) => Step::Ready(claim),
                None => Step::PENDING,
            })
        })
        .await?;
        Ok(claimed.map(|claim| self.claimed_build(claim, owner)))
    }

    fn claimed_build(&self, claim: BuildClaim, lease_owner: String) -> ClaimedBuild {
        let limits: &TenantLimits = &claim.limits;
        ClaimedBuild {
            build_id: claim.build_id,
            tenant_id: claim.tenant_id,
            lease_owner,
            attempt: claim.attempt,
            bundle_digest: claim.bundle_digest,
            runtime: claim.runtime,
            plan: claim.plan,
            indexes: self.settings.package_indexes.clone(),
            timeout_s: limits.build_timeout_s.max(1),
            memory_mb: limits.build_memory_mb.max(64),
            // The installed tree is storage the tenant holds.
            max_bytes: limits.max_dependency_bytes.min(limits.max_storage_bytes),
            next_seq: claim.next_seq,
        }
    }

    /// Appends lines `(stream, message)` to a build's log and extends its lease by
    /// `lease`; with no lines it is a heartbeat. `false` when the lease is not current.
    pub async fn build_log(
        &self,
        worker: &WorkerCtx,
        build: &BuildLease,
        lines: &[(String, String)],
        lease: LeaseLength,
    ) -> Result<bool> {
        check_build(worker, build)?;
        let clean: Vec<(String, String)> =
            lines.iter().map(|(stream, message)| (stream.clone(), message.replace('\0', "\u{fffd}"))).collect();
        Ok(self.store.build_log_append(build, &clean, lease.get()).await?)
    }

    /// Records how a build ended: a ready tree is stored as a blob first.
    pub async fn build_finish(&self, worker: &WorkerCtx, build: &BuildLease, result: BuildResult) -> Result<bool> {
        check_build(worker, build)?;
        let outcome = match result {
            BuildResult::Ready { archive, installed_bytes } => {
                BuildOutcome::Ready { archive_digest: self.blob_put(archive).await?, installed_bytes }
            }
            BuildResult::Failed { error } => BuildOutcome::Failed { error },
        };
        Ok(self.store.build_finish(build, &outcome).await?)
    }

    /// Hands a build back untouched (the worker is shutting down).
    pub async fn build_release(&self, worker: &WorkerCtx, build: &BuildLease) -> Result<bool> {
        check_build(worker, build)?;
        Ok(self.store.build_release(build).await?)
    }

    /// Puts back builds whose worker is gone. Returns how many it found.
    pub async fn recover_expired_builds(&self) -> Result<u64> {
        Ok(self.store.builds_recover_expired_unscoped().await?)
    }
}

/// To a worker, another worker's build does not exist.
fn check_build(worker: &WorkerCtx, build: &BuildLease) -> Result<()> {
    match worker.owns(&build.lease_owner) {
        true => Ok(()),
        false => Err(ControlError::NotFound(ResourceKind::Build)),
    }
}

impl BuildFollower {
    /// The next log line, then the end; `None` after the end.
    pub async fn next(&mut self) -> Result<Option<BuildFollowed>> {
        if let Some(line) = self.pending.pop_front() {
            self.after = line.seq;
            return Ok(Some(BuildFollowed::Line(line)));
        }
        if self.ended {
            return Ok(None);
        }
        let Some(id) = self.build.clone() else {
            self.ended = true;
            return Ok(Some(BuildFollowed::End { status: BuildStatus::Ready, error: None }));
        };
        let Self { store, scope, after, changes, .. } = self;
        let (store, scope, after, id) = (&*store, &*scope, *after, &id);
        let found = wait::until(changes, None, wait::BACKSTOP, || async move {
            let lines = store.build_log(scope, id, after, LOG_PAGE).await?;
            if !lines.is_empty() {
                return Ok(Step::Ready(Ok(lines)));
            }
            let build = store.build_get(scope, id).await?;
            if !build.status.is_settled() {
                return Ok(Step::PENDING);
            }
            // Lines may have landed between the two reads; the end comes after them.
            let lines = store.build_log(scope, id, after, LOG_PAGE).await?;
            Ok(Step::Ready(match lines.is_empty() {
                true => Err((build.status, build.error)),
                false => Ok(lines),
            }))
        })
        .await?;
        match found {
            Some(Ok(lines)) => {
                self.pending.extend(lines);
                Box::pin(self.next()).await
            }
            Some(Err((status, error))) => {
                self.ended = true;
                Ok(Some(BuildFollowed::End { status, error }))
            }
            None => Ok(None),
        }
    }
}
