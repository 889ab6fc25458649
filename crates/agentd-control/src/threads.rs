//! Threads: a conversation with one agent across invocations. The store keeps the rules
//! of state and order (see `agentd_store`'s `threads.rs`); here they are reached with
//! the capability each needs.

use agentd_core::{Checkpoint, Page, PageRequest, ResourceKind, Slug, Thread, ThreadId, ThreadState, ThreadStatus};

use crate::Control;
use crate::auth::{Ctx, Invoke, Read};
use crate::error::{ControlError, Result};
use crate::input::{Metadata, MetadataFilter, ThreadStateValue};

/// A thread to create.
#[derive(Debug, Clone, Default)]
pub struct ThreadSpec {
    /// The agent whose conversation it holds; absent: the first invoke on it decides.
    pub agent: Option<Slug>,
    pub metadata: Metadata,
}

/// Which threads a list shows; `None` does not filter.
#[derive(Debug, Clone, Default)]
pub struct ThreadFilter {
    pub agent: Option<Slug>,
    pub status: Option<ThreadStatus>,
    pub metadata: MetadataFilter,
}

impl Control {
    pub async fn thread_create(&self, ctx: &Ctx<Invoke>, spec: ThreadSpec) -> Result<Thread> {
        let scope = ctx.store_scope();
        let agent = match &spec.agent {
            Some(slug) => Some(self.store.agent_get(scope, slug).await?),
            None => None,
        };
        let thread = self.store.thread_create(scope, agent.as_ref(), &spec.metadata.into_inner()).await?;
        ctx.span().in_scope(|| tracing::info!(thread_id = %thread.id, "thread created"));
        Ok(thread)
    }

    /// A run's token reaches its own thread only.
    pub async fn thread_get(&self, ctx: &Ctx<Read>, id: &ThreadId) -> Result<Thread> {
        own_thread(ctx, id)?;
        Ok(self.store.thread_get(ctx.store_scope(), id).await?)
    }

    pub async fn threads_list(
        &self,
        ctx: &Ctx<Read>,
        filter: ThreadFilter,
        page: &PageRequest<ThreadId>,
    ) -> Result<Page<Thread>> {
        let filter = agentd_store::ThreadFilter {
            agent: filter.agent,
            status: filter.status,
            metadata: filter.metadata.into_inner(),
        };
        Ok(self.store.threads_list(ctx.store_scope(), &filter, page).await?)
    }

    /// Merges `metadata` into the thread's: each field given replaces its value, and a
    /// field given as `null` is removed.
    pub async fn thread_patch(&self, ctx: &Ctx<Invoke>, id: &ThreadId, metadata: Metadata) -> Result<Thread> {
        let fields = match metadata.into_inner() {
            serde_json::Value::Object(fields) => fields,
            _ => serde_json::Map::new(),
        };
        Ok(self.store.thread_patch(ctx.store_scope(), id, &fields).await?)
    }

    /// Deletes an idle thread and its checkpoints; its invocations stay.
    pub async fn thread_delete(&self, ctx: &Ctx<Invoke>, id: &ThreadId) -> Result<()> {
        self.store.thread_delete(ctx.store_scope(), id).await?;
        ctx.span().in_scope(|| tracing::info!(thread_id = %id, "thread deleted"));
        Ok(())
    }

    pub async fn thread_state(&self, ctx: &Ctx<Read>, id: &ThreadId) -> Result<ThreadState> {
        own_thread(ctx, id)?;
        Ok(self.store.thread_state(ctx.store_scope(), id).await?)
    }

    /// Sets the state by hand, as a new checkpoint (refused while a run of the thread is
    /// queued or running). A run may write its own thread's state with its token: the
    /// checkpoint is then the run's, and counts only if the run's own do.
    pub async fn thread_set_state(
        &self,
        ctx: &Ctx<Invoke>,
        id: &ThreadId,
        state: ThreadStateValue,
    ) -> Result<ThreadState> {
        own_thread(ctx, id)?;
        let by_run = ctx.run().map(|run| &run.invocation_id);
        Ok(self.store.thread_set_state(ctx.store_scope(), id, state.get(), by_run).await?)
    }

    /// The checkpoints that count, newest first.
    pub async fn thread_history(
        &self,
        ctx: &Ctx<Read>,
        id: &ThreadId,
        page: &PageRequest<u64>,
    ) -> Result<Page<Checkpoint>> {
        own_thread(ctx, id)?;
        Ok(self.store.thread_history(ctx.store_scope(), id, page).await?)
    }
}

/// A run's token reaches the thread it runs on and no other (which does not exist for it).
fn own_thread<C>(ctx: &Ctx<C>, id: &ThreadId) -> Result<()> {
    match ctx.run() {
        Some(run) if run.thread_id.as_ref() != Some(id) => Err(ControlError::NotFound(ResourceKind::Thread)),
        _ => Ok(()),
    }
}
