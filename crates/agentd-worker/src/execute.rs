//! Running one claimed invocation: start it in the sandbox, stream what it prints into
//! events, keep the lease alive, honour cancellation, and record the outcome. Nothing
//! is dropped silently: events and artifacts that cannot be recorded end the run as a
//! platform failure, which the server runs again as a new attempt.

use std::time::Duration;

use agentd_core::queue::{ClaimedRun, Completion, LeaseStatus};
use agentd_core::{ArtifactName, EventKind, EventStream, InvocationStatus};
use agentd_sandbox::{OutputFile, OutputLine, Stream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::Shared;
use crate::agent_messages::{AGENT_STREAM, AgentMessage};
use crate::event_log::{EventLog, Flushed, Unrecorded, with_retries};
use crate::outcome::{Reported, agent_failure, completion, platform_failure, truncate};
use crate::prepare;

pub(crate) async fn run_claimed(shared: &Shared, run: ClaimedRun, stop: CancellationToken) {
    let span = tracing::info_span!("run", tenant_id = %run.tenant_id, invocation_id = %run.invocation_id, attempt = run.attempt);
    async move {
        let mut log = EventLog::new(&run);
        let running = match &run.resume {
            // Resumes count apart from max_attempts: "attempt 3 of 1" would mislead.
            Some(answers) => format!("running (attempt {}, resumed with {} answers)", run.attempt, answers.len()),
            None => format!("running (attempt {} of {})", run.attempt, run.max_attempts),
        };
        log.status(InvocationStatus::Running, running);
        let started = log.flush(shared, &run).await;
        let completion = match started {
            Ok(Flushed::LeaseLost) => return,
            Err(unrecorded) => unrecorded_failure(&unrecorded),
            Ok(Flushed::Recorded) => match execute(shared, &run, &mut log, stop).await {
                Ended::Completed(done) => done,
                // The run belongs to someone else now; writing anything would be wrong.
                Ended::LeaseLost => return,
                Ended::ShuttingDown => return release(shared, &run, &mut log).await,
            },
        };
        // The closing status event is written by the queue with the completion itself.
        let completion = match log.flush(shared, &run).await {
            Ok(Flushed::LeaseLost) => return,
            Ok(Flushed::Recorded) => completion,
            Err(unrecorded) => unrecorded_failure(&unrecorded),
        };
        // Output, question and error message are the agent's words too.
        let completion = log.redactor().completion(completion);
        let lease = run.lease();
        match with_retries("completion", || shared.source.complete(&lease, completion.clone())).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!("the lease expired before completion; the result was not recorded"),
            Err(err) => tracing::error!(
                error = %err,
                "recording the completion failed; when the lease expires the run is recovered as a new attempt"
            ),
        }
    }
    .instrument(span)
    .await
}

/// Shutting down: the run goes back to the queue untouched.
async fn release(shared: &Shared, run: &ClaimedRun, log: &mut EventLog) {
    log.status(InvocationStatus::Queued, "worker shutting down; the run goes back to the queue".into());
    if let Err(err) = log.flush(shared, run).await {
        tracing::warn!(error = %err, "the release's event was not recorded");
    }
    let lease = run.lease();
    if let Err(err) = with_retries("release", || shared.source.release(&lease)).await {
        tracing::error!(error = ?err, "releasing the run failed; its lease will expire instead");
    }
}

fn unrecorded_failure(unrecorded: &Unrecorded) -> Completion {
    platform_failure("events_unrecorded", format!("{unrecorded}; the run was stopped"))
}

/// How `execute` ended.
enum Ended {
    Completed(Completion),
    LeaseLost,
    ShuttingDown,
}

/// Runs the agent and says how it ended.
async fn execute(shared: &Shared, run: &ClaimedRun, log: &mut EventLog, stop: CancellationToken) -> Ended {
    // Removed with everything in it when this function returns, however the run ended;
    // under the sandbox's instance dir, so a worker killed meanwhile leaves nothing for
    // good (the next worker's leftover pass removes it).
    let outputs = match tempfile::Builder::new()
        .prefix(&format!("{}-{}-", run.invocation_id, run.attempt))
        .tempdir_in(shared.sandbox.instance_dir())
    {
        Ok(dir) => dir,
        Err(err) => {
            tracing::error!(error = %err, "cannot create the run's outputs directory");
            return Ended::Completed(platform_failure("worker_error", "the worker could not create the run's files"));
        }
    };
    let spec = async {
        let manifest = prepare::manifest(run)?;
        let bundle = prepare::bundle_dir(shared, &run.digest).await?;
        let dependencies = prepare::dependency_mounts(shared, run, &manifest).await?;
        prepare::run_spec(shared, run, &manifest, bundle, dependencies, outputs.path().to_path_buf())
    };
    let spec = match spec.await {
        Ok(spec) => spec,
        Err(err) => {
            tracing::error!(error = %err, "cannot prepare the run");
            return Ended::Completed(platform_failure("bundle_unavailable", err.to_string()));
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
    let mut changes = shared.source.run_changes(&run.lease());
    let cancels_seen = changes.as_ref().map_or(0, |c| c.latest().cancels);
    // Without pushed changes a cancel arrives with the next renewal, so renew often.
    let every = match changes {
        Some(_) => shared.settings.lease / 3,
        None => (shared.settings.lease / 3).min(Duration::from_secs(1)),
    };
    let mut renew = tokio::time::interval(every);
    renew.tick().await;
    let mut reported =
        Reported { state: run.thread_id.is_some().then(|| run.thread_state.clone()), ..Reported::default() };
    let mut interrupted = None;
    let mut unrecorded = None;
    let mut outcome = None;
    let mut lines_open = true;
    while outcome.is_none() || lines_open {
        tokio::select! {
            result = &mut sandbox_run, if outcome.is_none() => {
                if let Ok(ended) = &result {
                    agentd_control::metrics::sandbox_spawned(ended.spawn);
                }
                outcome = Some(result);
            }
            line = lines.recv(), if lines_open => match line {
                Some(line) => {
                    record_line(log, &mut reported, line);
                    while let Ok(more) = lines.try_recv() {
                        record_line(log, &mut reported, more);
                    }
                    if unrecorded.is_none() {
                        match log.flush(shared, run).await {
                            Ok(Flushed::Recorded) => {}
                            Ok(Flushed::LeaseLost) => { interrupted = Some(Ended::LeaseLost); cancel.cancel(); }
                            // Stop the agent: what it does next could not be recorded either.
                            Err(err) => { unrecorded = Some(err); cancel.cancel(); }
                        }
                    }
                }
                None => lines_open = false,
            },
            _ = renew.tick() => match shared.source.renew(&run.lease(), shared.settings.lease).await {
                Ok(LeaseStatus::Held) => {}
                Ok(LeaseStatus::CancelRequested) => cancel.cancel(),
                Ok(LeaseStatus::Lost) => { interrupted = Some(Ended::LeaseLost); cancel.cancel(); }
                Err(err) => tracing::warn!(error = ?err, "renewing the lease failed; will try again"),
            },
            // Once cancelled there is nothing more to hear (and the branch would stay ready).
            _ = cancel_requested(&mut changes, cancels_seen), if !cancel.is_cancelled() => cancel.cancel(),
            _ = stop.cancelled(), if !cancel.is_cancelled() => {
                // Shutting down: stop the agent; the run is released to the queue.
                interrupted = Some(Ended::ShuttingDown);
                cancel.cancel();
            }
        }
    }
    if let Some(ended) = interrupted {
        return ended;
    }
    if let Some(unrecorded) = unrecorded {
        return Ended::Completed(unrecorded_failure(&unrecorded));
    }
    if let Err(unrecorded) = log.flush(shared, run).await {
        return Ended::Completed(unrecorded_failure(&unrecorded));
    }
    // Why a client in the run got nowhere, which the agent's own log rarely says.
    for refused in outcome.iter().flatten().flat_map(|o| &o.egress_refusals) {
        let text = format!("the egress proxy refused {refused}");
        log.push(EventKind::Log, EventStream::System, Some("warn".into()), Some(text), None);
    }
    Ended::Completed(match outcome {
        Some(Ok(outcome)) => match store_artifacts(shared, run, log, &outcome.outputs).await {
            Ok(Flushed::Recorded) => completion(outcome, reported),
            Ok(Flushed::LeaseLost) => return Ended::LeaseLost,
            Err(failed) => failed,
        },
        Some(Err(err)) => {
            tracing::error!(error = ?err, "the sandbox failed to run the agent");
            platform_failure("sandbox_error", format!("the platform could not run the agent: {}", err.summary()))
        }
        None => platform_failure("sandbox_error", "the run ended without an outcome"),
    })
}

/// Resolves once a cancel is requested after `seen` were; never without pushed changes.
async fn cancel_requested(changes: &mut Option<agentd_control::Subscription<agentd_control::Changes>>, seen: u64) {
    match changes {
        Some(changes) => loop {
            if changes.latest().cancels > seen {
                return;
            }
            changes.changed().await;
        },
        None => std::future::pending().await,
    }
}

/// Uploads what the agent left in `/outputs` and logs an `artifact` event for each file.
/// A file that cannot be stored after every try fails the run as the platform's fault; one
/// past the workspace's `max_storage_bytes` fails it as the agent's (`max_storage_bytes`).
async fn store_artifacts(
    shared: &Shared,
    run: &ClaimedRun,
    log: &mut EventLog,
    outputs: &[OutputFile],
) -> Result<Flushed, Completion> {
    let lease = run.lease();
    for file in outputs {
        let Some(name) = ArtifactName::parse(&file.name) else {
            tracing::warn!(artifact = %file.name, "skipped an output file whose name cannot be an artifact's");
            continue;
        };
        let stored = async {
            let bytes = tokio::fs::read(&file.path).await.map_err(|e| e.to_string())?;
            let digest = agentd_bundle::digest(&bytes);
            let upload = || shared.source.artifact(&lease, &name, bytes.clone());
            let applied = match with_retries("artifact", upload).await {
                Ok(applied) => applied,
                // The agent left more than its workspace may store: its failure, not ours.
                Err(full) if full.is_storage_full() => return Ok(Err(full.to_string())),
                Err(err) => return Err(err.to_string()),
            };
            Ok::<_, String>(Ok((applied, digest)))
        };
        match stored.await {
            Ok(Err(full)) => {
                let message = format!("the artifact {} was not stored: {full}", file.name);
                return Err(agent_failure(InvocationStatus::Failed, "max_storage_bytes", message));
            }
            Ok(Ok((true, digest))) => {
                let data = serde_json::json!({ "name": file.name, "size": file.size, "digest": digest });
                let text = format!("artifact {} ({} bytes)", file.name, file.size);
                log.push(EventKind::Artifact, EventStream::System, Some("info".into()), Some(text), Some(data));
            }
            Ok(Ok((false, _))) => return Ok(Flushed::LeaseLost),
            Err(err) => {
                tracing::error!(error = %err, artifact = %file.name, "storing an artifact failed");
                let message = format!("the platform could not store the artifact {} ({err})", file.name);
                return Err(platform_failure("artifacts_unrecorded", message));
            }
        }
    }
    Ok(Flushed::Recorded)
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
                    AgentMessage::Interrupt { value } => reported.interrupt = Some(value.clone()),
                    // Only a run on a thread has a state to keep.
                    AgentMessage::State { data } if reported.state.is_some() => reported.state = Some(data.clone()),
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
