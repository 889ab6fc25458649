//! Threads: conversations across invocations of one agent, and their checkpoints.
//!
//! Nothing about a thread is kept that its runs already say. Its status is read from its
//! runs (`busy` while one is queued, running or retrying; `interrupted` while one waits
//! for an answer; else `idle`), and its state is its latest checkpoint *that counts*: a
//! checkpoint set by hand, or written by a run that did not fail, time out or get
//! cancelled (a run stopped by a newer one under `multitask_strategy = interrupt` keeps
//! its state so far). So every way a run can end (its worker, a cancel, the lease
//! reaper, an input timeout) leaves the right state behind without touching the thread.
//!
//! Runs of one thread run one at a time, in the order they were accepted: the claim
//! skips a run while an earlier run of its thread is still going (`queue/sql.rs`).

use agentd_core::{
    Agent, AuditAction, Checkpoint, InvocationId, MultitaskStrategy, Page, PageRequest, ResourceKind, Slug,
    TenantScope, Thread, ThreadId, ThreadState, ThreadStatus, Timestamp,
};
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::audit::{Audit, resource};
use crate::error::Conflict;
use crate::events::append_status_event;
use crate::{Backend, Result, Signal, Store, StoreError, rows};

/// A thread's status, from its runs (`t` is the thread).
macro_rules! status {
    () => {
        "CASE
        WHEN EXISTS (SELECT 1 FROM invocations i WHERE i.thread_id = t.id AND i.status IN ('queued', 'running', 'retrying'))
            THEN 'busy'
        WHEN EXISTS (SELECT 1 FROM invocations i WHERE i.thread_id = t.id AND i.status = 'waiting_for_input')
            THEN 'interrupted'
        ELSE 'idle' END"
    };
}

/// Whether checkpoint `c` counts toward its thread's state.
macro_rules! counts {
    () => {
        "(c.invocation_id IS NULL OR EXISTS (SELECT 1 FROM invocations w WHERE w.id = c.invocation_id
            AND (w.status NOT IN ('failed', 'timed_out', 'cancelled') OR w.error_code = 'interrupted')))"
    };
}

/// Which threads a list shows; `None` does not filter.
#[derive(Debug, Clone, Default)]
pub struct ThreadFilter {
    pub agent: Option<Slug>,
    pub status: Option<ThreadStatus>,
    /// Threads whose metadata has each of these top-level fields with exactly this value.
    /// Field names are the caller's to check (letters, digits, `_`, `-`).
    pub metadata: Map<String, Value>,
}

/// The thread an invocation runs on, and what to do when the thread has a run going.
#[derive(Debug, Clone)]
pub struct ThreadRun {
    pub id: ThreadId,
    pub strategy: MultitaskStrategy,
}

impl Store {
    pub async fn thread_create(&self, ctx: &TenantScope, agent: Option<&Agent>, metadata: &Value) -> Result<Thread> {
        let now = Timestamp::now().unix_ms();
        let id = ThreadId::generate();
        let metadata = serde_json::to_string(metadata).map_err(|e| StoreError::corrupt("metadata", e))?;
        let mut tx = self.begin_scoped(ctx).await?;
        sqlx::query(
            "INSERT INTO threads (id, tenant_id, agent_id, agent_slug, metadata, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(id.as_str())
        .bind(ctx.tenant_id().as_str())
        .bind(agent.map(|a| a.id.as_str()))
        .bind(agent.map(|a| a.slug.as_str()))
        .bind(&metadata)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let thread = read_thread(&mut tx, ctx, &id).await?;
        Audit::new(AuditAction::ThreadCreate, resource::THREAD, id.as_str())
            .details(serde_json::json!({"agent": agent.map(|a| a.slug.as_str())}))
            .record(&mut tx, ctx)
            .await?;
        tx.commit().await?;
        Ok(thread)
    }

    pub async fn thread_get(&self, ctx: &TenantScope, id: &ThreadId) -> Result<Thread> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        let thread = read_thread(&mut tx, ctx, id).await?;
        tx.commit().await?;
        Ok(thread)
    }

    /// Threads newest first.
    pub async fn threads_list(
        &self,
        ctx: &TenantScope,
        filter: &ThreadFilter,
        page: &PageRequest<ThreadId>,
    ) -> Result<Page<Thread>> {
        let limit = i64::from(page.limit());
        // Metadata fields are compared in SQL so that pages stay full; `$6` onwards.
        let mut metadata_sql = String::new();
        let mut metadata_binds = Vec::new();
        match self.backend {
            Backend::Postgres if !filter.metadata.is_empty() => {
                metadata_sql.push_str(" AND t.metadata::jsonb @> $6::jsonb");
                metadata_binds.push(Value::Object(filter.metadata.clone()).to_string());
            }
            Backend::Postgres => {}
            Backend::Sqlite => {
                for (n, (field, value)) in filter.metadata.iter().enumerate() {
                    let (path, value_at) = (6 + 2 * n, 7 + 2 * n);
                    metadata_sql.push_str(&format!(
                        " AND json_type(t.metadata, ${path}) IS NOT NULL
                          AND json_extract(t.metadata, ${path}) IS json_extract(${value_at}, '$')
                          AND json_type(t.metadata, ${path}) = json_type(${value_at}, '$')"
                    ));
                    metadata_binds.push(format!("$.\"{field}\""));
                    metadata_binds.push(value.to_string());
                }
            }
        }
        let sql = format!(
            "SELECT * FROM (SELECT t.*, {} AS status FROM threads t
                 WHERE t.tenant_id = $1 AND ($2 IS NULL OR t.id < $2) AND ($3 IS NULL OR t.agent_slug = $3)
                 {metadata_sql}) listed
             WHERE ($4 IS NULL OR status = $4)
             ORDER BY id DESC LIMIT $5",
            status!()
        );
        // Only placeholders and fixed text are formatted in; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ctx.tenant_id().as_str())
            .bind(page.after().map(ThreadId::as_str))
            .bind(filter.agent.as_ref().map(Slug::as_str))
            .bind(filter.status.map(ThreadStatus::as_str))
            .bind(limit + 1);
        for bind in metadata_binds {
            query = query.bind(bind);
        }
        let mut tx = self.begin_scoped_read(ctx).await?;
        let found = query.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let list = found.iter().map(thread_row).collect::<Result<Vec<_>>>()?;
        Ok(rows::page(list, limit, |t| t.id.to_string()))
    }

    /// Merges `metadata`'s top-level fields into the thread's (a `null` removes one).
    pub async fn thread_patch(
        &self,
        ctx: &TenantScope,
        id: &ThreadId,
        metadata: &Map<String, Value>,
    ) -> Result<Thread> {
        let mut tx = self.begin_scoped(ctx).await?;
        let current = read_thread(&mut tx, ctx, id).await?;
        let mut merged = match current.metadata {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        for (field, value) in metadata {
            match value {
                Value::Null => merged.remove(field),
                other => merged.insert(field.clone(), other.clone()),
            };
        }
        let merged = Value::Object(merged).to_string();
        sqlx::query("UPDATE threads SET metadata = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2")
            .bind(ctx.tenant_id().as_str())
            .bind(id.as_str())
            .bind(&merged)
            .bind(Timestamp::now().unix_ms())
            .execute(&mut *tx)
            .await?;
        let thread = read_thread(&mut tx, ctx, id).await?;
        let fields: Vec<&String> = metadata.keys().collect();
        Audit::new(AuditAction::ThreadUpdate, resource::THREAD, id.as_str())
            .details(serde_json::json!({"metadata_fields": fields}))
            .record(&mut tx, ctx)
            .await?;
        tx.commit().await?;
        Ok(thread)
    }

    /// Deletes a thread and its checkpoints; refused while a run of it is going or
    /// waiting for an answer. Its invocations stay, naming the thread they ran on.
    pub async fn thread_delete(&self, ctx: &TenantScope, id: &ThreadId) -> Result<()> {
        let mut tx = self.begin_scoped(ctx).await?;
        let thread = lock_thread(&mut tx, self.backend, ctx, id).await?;
        if thread.status != ThreadStatus::Idle {
            return Err(Conflict::ThreadBusy { status: thread.status }.into());
        }
        sqlx::query("DELETE FROM thread_checkpoints WHERE tenant_id = $1 AND thread_id = $2")
            .bind(ctx.tenant_id().as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM threads WHERE tenant_id = $1 AND id = $2")
            .bind(ctx.tenant_id().as_str())
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        Audit::new(AuditAction::ThreadDelete, resource::THREAD, id.as_str()).record(&mut tx, ctx).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn thread_state(&self, ctx: &TenantScope, id: &ThreadId) -> Result<ThreadState> {
        let mut tx = self.begin_scoped_read(ctx).await?;
        read_thread(&mut tx, ctx, id).await?;
        let state = read_state(&mut tx, id).await?;
        tx.commit().await?;
        Ok(state)
    }

    /// The checkpoints that count, newest first.
    pub async fn thread_history(
        &self,
        ctx: &TenantScope,
        id: &ThreadId,
        page: &PageRequest<u64>,
    ) -> Result<Page<Checkpoint>> {
        let limit = i64::from(page.limit());
        let mut tx = self.begin_scoped_read(ctx).await?;
        read_thread(&mut tx, ctx, id).await?;
        let found = sqlx::query(concat!(
            "SELECT c.* FROM thread_checkpoints c WHERE c.thread_id = $1 AND ($2 IS NULL OR c.seq < $2) AND ",
            counts!(),
            " ORDER BY c.seq DESC LIMIT $3"
        ))
        .bind(id.as_str())
        .bind(page.after().map(|s| i64::try_from(*s).unwrap_or(i64::MAX)))
        .bind(limit + 1)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let list = found.iter().map(checkpoint_row).collect::<Result<Vec<_>>>()?;
        Ok(rows::page(list, limit, |c| c.seq.to_string()))
    }

    /// Sets the thread's state by hand, as a new checkpoint. Refused while a run of it is
    /// queued or running (the run would overwrite it); allowed while one waits for an
    /// answer, which is when a person most often corrects it (the resumed run starts on it).
    ///
    /// `by_run` is the thread's running run writing through its own token: the thread is
    /// busy with that very run, and the checkpoint is the run's (it counts or not with the
    /// run's fate, as the one it writes when it settles).
    pub async fn thread_set_state(
        &self,
        ctx: &TenantScope,
        id: &ThreadId,
        state: &Value,
        by_run: Option<&InvocationId>,
    ) -> Result<ThreadState> {
        let now = Timestamp::now().unix_ms();
        let state_text = serde_json::to_string(state).map_err(|e| StoreError::corrupt("state", e))?;
        let mut tx = self.begin_scoped(ctx).await?;
        let thread = lock_thread(&mut tx, self.backend, ctx, id).await?;
        if thread.status == ThreadStatus::Busy && by_run.is_none() {
            return Err(Conflict::ThreadBusy { status: thread.status }.into());
        }
        insert_checkpoint(&mut tx, id, ctx.tenant_id().as_str(), &state_text, by_run, now).await?;
        let state = read_state(&mut tx, id).await?;
        Audit::new(AuditAction::ThreadStateSet, resource::THREAD, id.as_str()).record(&mut tx, ctx).await?;
        tx.commit().await?;
        Ok(state)
    }

    /// The state a run starts on: the thread's latest checkpoint that counts, leaving out
    /// the run's own (a resumed run replays from the top, so it starts where its first
    /// attempt started, or on a state set by hand while it waited).
    pub(crate) async fn thread_state_for_run_unscoped(&self, thread_id: &str, invocation_id: &str) -> Result<Value> {
        let found: Option<String> = sqlx::query_scalar(concat!(
            "SELECT c.state FROM thread_checkpoints c
             WHERE c.thread_id = $1 AND (c.invocation_id IS NULL OR c.invocation_id <> $2) AND ",
            counts!(),
            " ORDER BY c.seq DESC LIMIT 1"
        ))
        .bind(thread_id)
        .bind(invocation_id)
        .fetch_optional(&self.writer)
        .await?;
        match found {
            Some(text) => serde_json::from_str(&text).map_err(|e| StoreError::corrupt("state", e)),
            None => Ok(Value::Null),
        }
    }
}

/// What accepting a run on a thread did to the thread's other runs.
#[derive(Debug, Default)]
pub(crate) struct ThreadPrepared {
    /// Runs that were waiting and are now cancelled (`interrupt` and `rollback`).
    pub(crate) stopped: Vec<InvocationId>,
    /// Running runs asked to stop.
    pub(crate) flagged: Vec<InvocationId>,
}

impl ThreadPrepared {
    pub(crate) async fn signal(self, store: &Store) {
        for id in self.stopped {
            store.emit(Signal::InvocationChanged(id)).await;
        }
        for id in self.flagged {
            store.emit(Signal::CancelRequested(id)).await;
        }
    }
}

/// In the transaction that accepts a run of `agent` on `run.id`: checks the thread (it
/// exists, and is the agent's or no agent's yet, and then becomes the agent's) and
/// applies the multitask strategy to the runs it has going.
pub(crate) async fn prepare_run(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    ctx: &TenantScope,
    agent: &Agent,
    run: &ThreadRun,
    now: i64,
) -> Result<ThreadPrepared> {
    let thread = lock_thread(tx, backend, ctx, &run.id).await?;
    match &thread.agent {
        Some(slug) if slug != &agent.slug => {
            return Err(Conflict::ThreadOfAnotherAgent { agent: slug.to_string() }.into());
        }
        Some(_) => {}
        None => {
            sqlx::query("UPDATE threads SET agent_id = $3, agent_slug = $4 WHERE tenant_id = $1 AND id = $2")
                .bind(ctx.tenant_id().as_str())
                .bind(run.id.as_str())
                .bind(agent.id.as_str())
                .bind(agent.slug.as_str())
                .execute(&mut **tx)
                .await?;
        }
    }
    sqlx::query("UPDATE threads SET updated_at = $3 WHERE tenant_id = $1 AND id = $2")
        .bind(ctx.tenant_id().as_str())
        .bind(run.id.as_str())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    let mut prepared = ThreadPrepared::default();
    if thread.status == ThreadStatus::Idle || run.strategy == MultitaskStrategy::Enqueue {
        return Ok(prepared);
    }
    let (code, cancel_flag, message) = match run.strategy {
        MultitaskStrategy::Reject => return Err(Conflict::ThreadBusy { status: thread.status }.into()),
        MultitaskStrategy::Enqueue => return Ok(prepared),
        MultitaskStrategy::Interrupt => (
            "interrupted",
            CANCEL_INTERRUPTED,
            "interrupted by a newer run on its thread (multitask_strategy interrupt); its state so far is kept",
        ),
        MultitaskStrategy::Rollback => (
            "rolled_back",
            CANCEL_ROLLED_BACK,
            "rolled back by a newer run on its thread (multitask_strategy rollback); its checkpoints are discarded",
        ),
    };
    let stopped = sqlx::query(
        "UPDATE invocations SET status = 'cancelled', finished_at = $3, error_code = $4, error_message = $5,
            input_deadline_at = NULL
         WHERE tenant_id = $1 AND thread_id = $2 AND status IN ('queued', 'retrying', 'waiting_for_input')
         RETURNING id",
    )
    .bind(ctx.tenant_id().as_str())
    .bind(run.id.as_str())
    .bind(now)
    .bind(code)
    .bind(message)
    .fetch_all(&mut **tx)
    .await?;
    for row in &stopped {
        let id: String = row.try_get("id")?;
        let data = serde_json::json!({"status": "cancelled", "reason": code});
        let line = format!("cancelled: {message}");
        append_status_event(tx, &id, ctx.tenant_id().as_str(), now, "warn", &line, &data).await?;
        prepared.stopped.push(InvocationId::from_trusted(id));
    }
    let flagged = sqlx::query(
        "UPDATE invocations SET cancel_requested = $3 WHERE tenant_id = $1 AND thread_id = $2 AND status = 'running'
         RETURNING id",
    )
    .bind(ctx.tenant_id().as_str())
    .bind(run.id.as_str())
    .bind(cancel_flag)
    .fetch_all(&mut **tx)
    .await?;
    for row in &flagged {
        prepared.flagged.push(InvocationId::from_trusted(row.try_get("id")?));
    }
    Ok(prepared)
}

/// `cancel_requested` of a running run that a newer run on its thread interrupts, or
/// rolls back (`1` is a plain cancel). The completion turns them into the error codes
/// `interrupted` and `rolled_back`.
pub(crate) const CANCEL_INTERRUPTED: i64 = 2;
pub(crate) const CANCEL_ROLLED_BACK: i64 = 3;

/// In a completion's transaction: the run's checkpoint, when its run settled in a way
/// that keeps state (succeeded, waiting for an answer, or interrupted by a newer run).
/// `state` is the state the worker reports (the one the run started on, replaced by
/// every `state` the agent sent).
pub(crate) async fn record_checkpoint(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    invocation_id: &InvocationId,
    state: &str,
    now: i64,
) -> Result<()> {
    let settled = sqlx::query(
        "SELECT i.thread_id, i.tenant_id FROM invocations i JOIN threads t ON t.id = i.thread_id
         WHERE i.id = $1
           AND (i.status IN ('succeeded', 'waiting_for_input') OR (i.status = 'cancelled' AND i.error_code = 'interrupted'))",
    )
    .bind(invocation_id.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = settled else { return Ok(()) };
    let thread_id = ThreadId::from_trusted(row.try_get("thread_id")?);
    let tenant_id: String = row.try_get("tenant_id")?;
    insert_checkpoint(tx, &thread_id, &tenant_id, state, Some(invocation_id), now).await
}

async fn insert_checkpoint(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    thread_id: &ThreadId,
    tenant_id: &str,
    state: &str,
    invocation_id: Option<&InvocationId>,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO thread_checkpoints (thread_id, seq, tenant_id, state, invocation_id, created_at)
         SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5 FROM thread_checkpoints WHERE thread_id = $1",
    )
    .bind(thread_id.as_str())
    .bind(tenant_id)
    .bind(state)
    .bind(invocation_id.map(InvocationId::as_str))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE threads SET updated_at = $2 WHERE id = $1")
        .bind(thread_id.as_str())
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Reads the thread and, on PostgreSQL, locks its row until the transaction ends, so that
/// two invokes on one thread decide their strategy one after the other (SQLite's single
/// writer already serializes them).
async fn lock_thread(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    backend: Backend,
    ctx: &TenantScope,
    id: &ThreadId,
) -> Result<Thread> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT id FROM threads WHERE tenant_id = $1 AND id = $2 FOR UPDATE")
            .bind(ctx.tenant_id().as_str())
            .bind(id.as_str())
            .fetch_optional(&mut **tx)
            .await?;
    }
    read_thread(tx, ctx, id).await
}

async fn read_thread(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    ctx: &TenantScope,
    id: &ThreadId,
) -> Result<Thread> {
    let row = sqlx::query(concat!(
        "SELECT t.*, ",
        status!(),
        " AS status FROM threads t WHERE t.tenant_id = $1 AND t.id = $2"
    ))
    .bind(ctx.tenant_id().as_str())
    .bind(id.as_str())
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(StoreError::NotFound(ResourceKind::Thread))?;
    thread_row(&row)
}

async fn read_state(tx: &mut sqlx::Transaction<'static, sqlx::Any>, id: &ThreadId) -> Result<ThreadState> {
    let latest = sqlx::query(concat!(
        "SELECT c.* FROM thread_checkpoints c WHERE c.thread_id = $1 AND ",
        counts!(),
        " ORDER BY c.seq DESC LIMIT 1"
    ))
    .bind(id.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    let checkpoint = latest.as_ref().map(checkpoint_row).transpose()?;
    Ok(ThreadState {
        thread_id: id.clone(),
        state: checkpoint.as_ref().map_or(Value::Null, |c| c.state.clone()),
        checkpoint,
    })
}

fn thread_row(row: &AnyRow) -> Result<Thread> {
    let status: String = row.try_get("status")?;
    Ok(Thread {
        id: ThreadId::from_trusted(row.try_get("id")?),
        agent: row.try_get::<Option<String>, _>("agent_slug")?.map(Slug::from_trusted),
        status: ThreadStatus::parse(&status).map_err(|e| StoreError::corrupt("status", e))?,
        metadata: rows::json(row, "metadata")?,
        created_at: rows::ts(row, "created_at")?,
        updated_at: rows::ts(row, "updated_at")?,
    })
}

fn checkpoint_row(row: &AnyRow) -> Result<Checkpoint> {
    Ok(Checkpoint {
        seq: rows::u64_col(row, "seq")?,
        state: rows::json(row, "state")?,
        invocation_id: row.try_get::<Option<String>, _>("invocation_id")?.map(InvocationId::from_trusted),
        created_at: rows::ts(row, "created_at")?,
    })
}
