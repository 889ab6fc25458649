//! Running one claimed invocation: start it in the sandbox, stream what it prints into
//! events, keep the lease alive, honour cancellation, and record the outcome.

use std::time::Duration;

use agentd_core::{EventKind, EventStream, InvocationError, InvocationStatus, Timestamp, Usage};
use agentd_sandbox::{OutputFile, OutputLine, RunOutcome, Stream, Termination};
use agentd_store::{ClaimedRun, Completion, LeaseStatus, NewEvent, Signal};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::Shared;
use crate::prepare;
use crate::protocol::{AGENT_STREAM, AgentMessage};

/// What the agent reported while it ran.
#[derive(Default)]
struct Reported {
    output: Option<Value>,
    interrupted: bool,
    last_stderr: Option<String>,
}

/// Numbers events of one invocation and buffers them until the next flush.
struct EventLog {
    next_seq: u64,
    pending: Vec<NewEvent>,
}

impl EventLog {
    fn push(
        &mut self,
        kind: EventKind,
        stream: EventStream,
        level: Option<String>,
        message: Option<String>,
        data: Option<Value>,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending.push(NewEvent { seq, ts: Timestamp::now(), kind, stream, level, message, data });
    }

    fn status(&mut self, status: InvocationStatus, message: String) {
        let data = serde_json::json!({ "status": status.as_str() });
        self.push(EventKind::Status, EventStream::System, Some("info".into()), Some(message), Some(data));
    }

    async fn flush(&mut self, shared: &Shared, run: &ClaimedRun) {
        if self.pending.is_empty() {
            return;
        }
        match shared.source.append_events(&run.lease(), &self.pending).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!("the lease is gone; these lines were not recorded"),
            Err(err) => tracing::error!(error = ?err, "appending events failed; these lines are lost"),
        }
        self.pending.clear();
    }
}

pub(crate) async fn run_claimed(shared: &Shared, run: ClaimedRun, stop: CancellationToken) {
    let span = tracing::info_span!("run", tenant_id = %run.tenant_id, invocation_id = %run.invocation_id, attempt = run.attempt);
    async move {
        let mut log = EventLog { next_seq: run.next_seq, pending: Vec::new() };
        log.status(InvocationStatus::Running, format!("running (attempt {} of {})", run.attempt, run.max_attempts));
        log.flush(shared, &run).await;
        let completion = match execute(shared, &run, &mut log, stop).await {
            Ended::Completed(done) => done,
            // The run belongs to someone else now; writing anything would be wrong.
            Ended::LeaseLost => return,
            Ended::ShuttingDown => {
                log.status(InvocationStatus::Queued, "worker shutting down; the run goes back to the queue".into());
                log.flush(shared, &run).await;
                if let Err(err) = shared.source.release(&run.lease()).await {
                    tracing::error!(error = ?err, "releasing the run failed; its lease will expire instead");
                }
                return;
            }
        };
        // The closing status event is written by the queue with the completion itself.
        log.flush(shared, &run).await;
        match shared.source.complete(&run.lease(), completion).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!("the lease expired before completion; the result was not recorded"),
            Err(err) => {
                tracing::error!(error = ?err, "recording the completion failed; the lease reaper will retry the run")
            }
        }
    }
    .instrument(span)
    .await
}

fn failed(status: InvocationStatus, code: &str, message: impl Into<String>) -> Completion {
    let error = Some(InvocationError { code: code.into(), message: message.into() });
    Completion { status, output: None, error, usage: Usage::default() }
}

/// How `execute` ended.
enum Ended {
    Completed(Completion),
    LeaseLost,
    ShuttingDown,
}

/// Runs the agent and says how it ended.
async fn execute(shared: &Shared, run: &ClaimedRun, log: &mut EventLog, stop: CancellationToken) -> Ended {
    // Removed with everything in it when this function returns, however the run ended.
    let outputs = match tempfile::Builder::new()
        .prefix(&format!("{}-{}-", run.invocation_id, run.attempt))
        .tempdir_in(shared.settings.data_dir.join(crate::OUTPUTS_DIR))
    {
        Ok(dir) => dir,
        Err(err) => {
            tracing::error!(error = %err, "cannot create the run's outputs directory");
            return Ended::Completed(failed(InvocationStatus::Failed, "worker_error", "the worker's disk failed"));
        }
    };
    let spec = async {
        let manifest = prepare::manifest(run)?;
        let bundle = prepare::bundle_dir(shared, &run.digest).await?;
        prepare::run_spec(shared, run, &manifest, bundle, outputs.path().to_path_buf())
    };
    let spec = match spec.await {
        Ok(spec) => spec,
        Err(err) => {
            tracing::error!(error = %err, "cannot prepare the run");
            return Ended::Completed(failed(InvocationStatus::Failed, "bundle_unavailable", err.to_string()));
        }
    };
    let (tx, mut lines) = mpsc::channel::<OutputLine>(1024);
    let cancel = CancellationToken::new();
    let sandbox_run = {
        let cancel = cancel.clone();
        let sandbox = &shared.sandbox;
        async move { sandbox.run(spec, tx, cancel).await }
    };
    tokio::pin!(sandbox_run);
    let mut signals = shared.source.signals();
    // Without pushed signals a cancel arrives with the next renewal, so renew often.
    let every = match signals {
        Some(_) => shared.settings.lease / 3,
        None => (shared.settings.lease / 3).min(Duration::from_secs(1)),
    };
    let mut renew = tokio::time::interval(every);
    renew.tick().await;
    let mut reported = Reported::default();
    let mut interrupted = None;
    let mut outcome = None;
    let mut lines_open = true;
    while outcome.is_none() || lines_open {
        tokio::select! {
            result = &mut sandbox_run, if outcome.is_none() => outcome = Some(result),
            line = lines.recv(), if lines_open => match line {
                Some(line) => {
                    record_line(log, &mut reported, line);
                    while let Ok(more) = lines.try_recv() {
                        record_line(log, &mut reported, more);
                    }
                    log.flush(shared, run).await;
                }
                None => lines_open = false,
            },
            _ = renew.tick() => match shared.source.renew(&run.lease(), shared.settings.lease).await {
                Ok(LeaseStatus::Held) => {}
                Ok(LeaseStatus::CancelRequested) => cancel.cancel(),
                Ok(LeaseStatus::Lost) => { interrupted = Some(Ended::LeaseLost); cancel.cancel(); }
                Err(err) => tracing::warn!(error = ?err, "renewing the lease failed; will try again"),
            },
            signal = next_signal(&mut signals) => if let Ok(Signal::CancelRequested(id)) = signal && id == run.invocation_id {
                cancel.cancel();
            },
            _ = stop.cancelled(), if !cancel.is_cancelled() => {
                // Shutting down: stop the agent; the run is released to the queue.
                interrupted = Some(Ended::ShuttingDown);
                cancel.cancel();
            }
        }
    }
    log.flush(shared, run).await;
    if let Some(ended) = interrupted {
        return ended;
    }
    Ended::Completed(match outcome {
        Some(Ok(outcome)) => {
            if !store_artifacts(shared, run, log, &outcome.outputs).await {
                return Ended::LeaseLost;
            }
            completion(outcome, reported)
        }
        Some(Err(err)) => {
            tracing::error!(error = ?err, "the sandbox failed to run the agent");
            failed(
                InvocationStatus::Failed,
                "sandbox_error",
                format!(
                    "the platform could not run the agent: {} (a fault of the platform, not of the agent)",
                    err.summary()
                ),
            )
        }
        None => failed(InvocationStatus::Failed, "sandbox_error", "the run ended without an outcome"),
    })
}

/// Uploads what the agent left in `/outputs` and logs an `artifact` event for each file.
/// False when the lease was lost meanwhile. A file that cannot be stored is logged and
/// skipped: the run's own result stands.
async fn store_artifacts(shared: &Shared, run: &ClaimedRun, log: &mut EventLog, outputs: &[OutputFile]) -> bool {
    for file in outputs {
        let stored = async {
            let bytes = tokio::fs::read(&file.path).await.map_err(|e| e.to_string())?;
            let digest = agentd_store::digest_of(&bytes);
            let applied = shared.source.artifact(&run.lease(), &file.name, bytes).await.map_err(|e| e.to_string())?;
            Ok::<_, String>((applied, digest))
        };
        match stored.await {
            Ok((true, digest)) => {
                let data = serde_json::json!({ "name": file.name, "size": file.size, "digest": digest });
                let text = format!("artifact {} ({} bytes)", file.name, file.size);
                log.push(EventKind::Artifact, EventStream::System, Some("info".into()), Some(text), Some(data));
            }
            Ok((false, _)) => return false,
            Err(err) => {
                tracing::error!(error = %err, artifact = %file.name, "storing an artifact failed");
                let text = format!("artifact {} could not be stored", file.name);
                log.push(EventKind::Log, EventStream::System, Some("error".into()), Some(text), None);
            }
        }
    }
    true
}

async fn next_signal(
    signals: &mut Option<tokio::sync::broadcast::Receiver<Signal>>,
) -> Result<Signal, tokio::sync::broadcast::error::RecvError> {
    match signals {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

fn record_line(log: &mut EventLog, reported: &mut Reported, line: OutputLine) {
    match line.stream {
        Stream::Stdout => log.push(EventKind::Log, EventStream::Stdout, Some("info".into()), Some(line.line), None),
        Stream::Stderr => {
            reported.last_stderr = Some(line.line.clone());
            log.push(EventKind::Log, EventStream::Stderr, Some("error".into()), Some(line.line), None)
        }
        Stream::Events => match AgentMessage::parse(&line.line) {
            Ok(message) => {
                match &message {
                    AgentMessage::Output { data } => reported.output = Some(data.clone()),
                    AgentMessage::Interrupt { .. } => reported.interrupted = true,
                    _ => {}
                }
                let (kind, level, text, data) = message.as_event();
                log.push(kind, AGENT_STREAM, level, text, data);
            }
            Err(err) => {
                let text = format!("ignored a malformed event line ({err}): {}", truncate(&line.line, 200));
                log.push(EventKind::Log, EventStream::System, Some("warn".into()), Some(text), None)
            }
        },
    }
}

fn completion(outcome: RunOutcome, reported: Reported) -> Completion {
    let usage = Usage {
        wall_ms: outcome.wall.as_millis() as u64,
        cpu_ms: outcome.cpu.as_millis() as u64,
        peak_memory_bytes: outcome.peak_memory_bytes,
        log_bytes: outcome.output_bytes,
    };
    let mut done = match outcome.termination {
        Termination::Exited(0) if reported.interrupted => {
            Completion { status: InvocationStatus::WaitingForInput, output: None, error: None, usage: Usage::default() }
        }
        Termination::Exited(0) => Completion {
            status: InvocationStatus::Succeeded,
            output: reported.output,
            error: None,
            usage: Usage::default(),
        },
        Termination::Exited(code) => {
            let detail = reported.last_stderr.map(|l| format!(": {}", truncate(&l, 300))).unwrap_or_default();
            failed(InvocationStatus::Failed, "agent_failed", format!("the agent exited with code {code}{detail}"))
        }
        Termination::Signaled(sig) => {
            failed(InvocationStatus::Failed, "agent_killed", format!("the agent was killed by signal {sig}"))
        }
        Termination::TimedOut => failed(
            InvocationStatus::TimedOut,
            "timeout",
            format!("the agent ran longer than its timeout ({} ms)", usage.wall_ms),
        ),
        Termination::Cancelled => {
            failed(InvocationStatus::Cancelled, "cancelled", "cancelled while running; the process tree was killed")
        }
        Termination::MemoryLimit => failed(
            InvocationStatus::Failed,
            "memory_limit",
            format!("the agent used more than its memory limit (peak {} bytes)", usage.peak_memory_bytes),
        ),
        Termination::OutputLimit => failed(
            InvocationStatus::Failed,
            "output_limit",
            format!("the agent printed more than its output limit ({} bytes)", usage.log_bytes),
        ),
    };
    done.usage = usage;
    done
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}
