//! An agent's configuration as its runs see it: the environment, resolved once when an
//! invocation is accepted, and the JSON Schemas its input and output are checked against.
//!
//! Environment, later wins: the manifest's `[env]`, then the agent's `config.env`, then
//! the invoke's `env` (only for names in the manifest's `overridable_env`). Names the
//! platform sets itself are refused by each source's own rule, so none can reach a run.
//!
//! Schemas: the agent's own wins over the active version's manifest. An input that does
//! not match is refused at invoke; an output that does not match is recorded as a warning
//! event and the run still succeeds (the agent's work is done; refusing it would only
//! lose it).

use std::collections::BTreeMap;

use agentd_bundle::{Manifest, Schema, SchemaViolation};
use agentd_core::queue::{NewEvent, RunLease};
use agentd_core::{Agent, AgentVersion, EventKind, EventStream, Timestamp};
use serde_json::{Value, json};

use crate::Control;
use crate::error::{ControlError, Invalid, Result};
use crate::input::EnvVars;

/// What accepting an invocation needs from the agent and its active version.
pub(crate) struct RunConfig<'a> {
    agent: &'a Agent,
    manifest: Manifest,
}

impl<'a> RunConfig<'a> {
    /// The stored manifest is trusted (only the bundle crate wrote it).
    pub(crate) fn of(agent: &'a Agent, version: &AgentVersion) -> Result<RunConfig<'a>> {
        let manifest = serde_json::from_value(version.manifest.clone()).map_err(ControlError::internal)?;
        Ok(RunConfig { agent, manifest })
    }

    /// Refuses an input that breaks the agent's input schema (or else the manifest's).
    pub(crate) fn check_input(&self, input: &Value) -> Result<()> {
        let Some(schema) = self.agent.input_schema.as_ref().or(self.manifest.input_schema.as_ref()) else {
            return Ok(());
        };
        let violations = compile_stored(schema)?.violations(input);
        if violations.is_empty() { Ok(()) } else { Err(Invalid::InputInvalid { violations }.into()) }
    }

    /// The run's environment: manifest `[env]` < agent `config.env` < invoke `env`.
    pub(crate) fn run_env(&self, invoke_env: EnvVars) -> Result<BTreeMap<String, String>, Invalid> {
        let overridable = &self.manifest.overridable_env;
        if let Some(name) = invoke_env.names().find(|name| !overridable.iter().any(|allowed| allowed == name)) {
            return Err(Invalid::EnvNotOverridable { name: name.to_owned(), allowed: overridable.clone() });
        }
        let mut env = self.manifest.env.clone();
        env.extend(self.agent.config.env.clone());
        env.extend(invoke_env.into_inner());
        Ok(env)
    }
}

/// A schema read back from the store compiled when it was written; failing now is the
/// platform's fault, not the caller's.
fn compile_stored(schema: &Value) -> Result<Schema> {
    Schema::compile(schema).map_err(ControlError::internal)
}

impl Control {
    /// Checks a succeeded run's output against the agent's output schema (or else its
    /// manifest's) and, on a mismatch, appends a `warn` log event that says where. Written
    /// just before the completion and fenced on the same lease: a lease lost in between
    /// leaves a true warning about an attempt that did run.
    pub(crate) async fn warn_on_output_mismatch(&self, run: &RunLease, output: Option<&Value>) -> Result<()> {
        let Some(schemas) = self.store.queue_output_schemas(run).await? else { return Ok(()) };
        let manifest_schema = schemas.manifest.get("output_schema").filter(|s| !s.is_null());
        let Some(schema) = schemas.agent_schema.as_ref().or(manifest_schema) else { return Ok(()) };
        let schema = match Schema::compile(schema) {
            Ok(schema) => schema,
            Err(refusal) => {
                // Not the agent's fault, and no reason to fail its run: say so to the operator.
                tracing::error!(invocation_id = %run.invocation_id, %refusal, "stored output_schema does not compile");
                return Ok(());
            }
        };
        // No output event means `output: null`, which the schema may well refuse.
        let violations = schema.violations(output.unwrap_or(&Value::Null));
        if violations.is_empty() {
            return Ok(());
        }
        let event = output_mismatch_event(schemas.next_seq, &violations);
        self.store.events_append(run, &[event]).await?;
        Ok(())
    }
}

fn output_mismatch_event(seq: u64, violations: &[SchemaViolation]) -> NewEvent {
    NewEvent {
        seq,
        ts: Timestamp::now(),
        kind: EventKind::Log,
        stream: EventStream::System,
        level: Some("warn".to_owned()),
        message: Some(format!(
            "output does not match the agent's output_schema: {}",
            describe_violations("the output", violations)
        )),
        data: Some(json!({ "errors": violations })),
    }
}

/// The first violation, and how many more there are: every one is listed in the data
/// that goes with the message (the problem document's or the event's `errors`).
pub(crate) fn describe_violations(document: &str, violations: &[SchemaViolation]) -> String {
    let Some(first) = violations.first() else { return format!("{document} does not match") };
    let at = if first.path.is_empty() { document.to_owned() } else { format!("at {}", first.path) };
    match violations.len() {
        1 => format!("{at}: {}", first.message),
        n => format!("{at}: {} (and {} more)", first.message, n - 1),
    }
}

#[cfg(test)]
mod tests {
    use agentd_core::{AgentConfig, AgentId, AgentStatus, Slug, VersionId, Visibility};

    use super::*;

    fn agent(env: &[(&str, &str)], input_schema: Option<Value>) -> Agent {
        Agent {
            id: AgentId::generate(),
            slug: Slug::parse("a").unwrap(),
            name: "a".into(),
            description: None,
            tags: vec![],
            visibility: Visibility::Private,
            status: AgentStatus::Active,
            active_version: Some(1),
            config: AgentConfig { env: env.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect() },
            input_schema,
            output_schema: None,
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
        }
    }

    fn version(manifest: Value) -> AgentVersion {
        AgentVersion {
            id: VersionId::generate(),
            agent_id: AgentId::generate(),
            version: 1,
            digest: String::new(),
            manifest,
            size_bytes: 0,
            created_by: String::new(),
            created_at: Timestamp::now(),
            build: agentd_core::VersionBuild::nothing_to_install(),
        }
    }

    fn manifest(extra: Value) -> Value {
        let mut base = json!({"name": "a", "runtime": "shell", "entrypoint": "run.sh"});
        base.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        base
    }

    fn vars(pairs: &[(&str, &str)]) -> EnvVars {
        EnvVars::parse(pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()).unwrap()
    }

    #[test]
    fn later_sources_win_and_invoke_sets_only_overridable_names() {
        let agent = agent(&[("B", "agent"), ("C", "agent")], None);
        let version = version(manifest(json!({
            "env": {"A": "manifest", "B": "manifest", "C": "manifest"},
            "overridable_env": ["C", "D"]
        })));
        let config = RunConfig::of(&agent, &version).unwrap();
        let env = config.run_env(vars(&[("C", "invoke"), ("D", "invoke")])).unwrap();
        let expected: BTreeMap<String, String> = [("A", "manifest"), ("B", "agent"), ("C", "invoke"), ("D", "invoke")]
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        assert_eq!(env, expected);
        let err = config.run_env(vars(&[("B", "invoke")])).unwrap_err();
        assert_eq!(err, Invalid::EnvNotOverridable { name: "B".into(), allowed: vec!["C".into(), "D".into()] });
        assert!(err.to_string().contains("`overridable_env` (C, D)"), "{err}");
    }

    #[test]
    fn the_agents_input_schema_wins_over_the_manifests() {
        let strict = json!({"type": "object", "required": ["text"]});
        let version = version(manifest(json!({"input_schema": {"type": "object", "required": ["n"]}})));
        let by_manifest = agent(&[], None);
        let config = RunConfig::of(&by_manifest, &version).unwrap();
        assert!(config.check_input(&json!({"n": 1})).is_ok());
        let by_agent = agent(&[], Some(strict));
        let config = RunConfig::of(&by_agent, &version).unwrap();
        match config.check_input(&json!({"n": 1})) {
            Err(ControlError::Invalid(Invalid::InputInvalid { violations })) => {
                assert_eq!(violations[0].path, "");
                assert!(violations[0].message.contains("text"), "{violations:?}");
            }
            other => panic!("expected input_invalid, got {other:?}"),
        }
        assert!(config.check_input(&json!({"text": "hi"})).is_ok());
    }

    #[test]
    fn an_output_mismatch_event_is_a_warning_listing_every_path() {
        let violations = vec![
            SchemaViolation { path: "/a".into(), message: "1 is not of type \"string\"".into() },
            SchemaViolation { path: "/b".into(), message: "x".into() },
        ];
        let event = output_mismatch_event(7, &violations);
        assert_eq!((event.seq, event.kind, event.level.as_deref()), (7, EventKind::Log, Some("warn")));
        assert_eq!(
            event.message.as_deref(),
            Some("output does not match the agent's output_schema: at /a: 1 is not of type \"string\" (and 1 more)")
        );
        assert_eq!(event.data.unwrap()["errors"][1]["path"], "/b");
    }
}
