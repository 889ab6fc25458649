//! The messages an agent writes on fd 3 (DESIGN §5): JSON Lines of log, state,
//! interrupt, output and artifact messages, and the event each one is recorded as.

use agentd_core::{EventKind, EventStream};
use serde::Deserialize;
use serde_json::Value;

/// One message an agent wrote on its events fd.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum AgentMessage {
    Log {
        #[serde(default)]
        level: Option<String>,
        #[serde(default)]
        message: Option<String>,
    },
    Output {
        #[serde(default)]
        data: Value,
    },
    State {
        #[serde(default)]
        data: Value,
    },
    Interrupt {
        #[serde(default)]
        value: Value,
    },
    Artifact {
        path: String,
    },
}

impl AgentMessage {
    pub(crate) fn parse(line: &str) -> Result<AgentMessage, serde_json::Error> {
        serde_json::from_str(line)
    }

    /// How this message is recorded as an event: kind, level, message, data.
    pub(crate) fn as_event(&self) -> (EventKind, Option<String>, Option<String>, Option<Value>) {
        match self {
            AgentMessage::Log { level, message } => {
                (EventKind::Log, Some(level.clone().unwrap_or_else(|| "info".into())), message.clone(), None)
            }
            AgentMessage::Output { data } => (EventKind::Output, None, None, Some(data.clone())),
            AgentMessage::State { data } => (EventKind::State, None, None, Some(data.clone())),
            AgentMessage::Interrupt { value } => (EventKind::Interrupt, None, None, Some(value.clone())),
            AgentMessage::Artifact { path } => (EventKind::Artifact, None, Some(path.clone()), None),
        }
    }
}

/// The stream an agent message is recorded under.
pub(crate) const AGENT_STREAM: EventStream = EventStream::Agent;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_message_type_of_the_protocol() {
        let log = AgentMessage::parse(r#"{"type":"log","level":"warn","message":"hi"}"#);
        assert_eq!(log.ok(), Some(AgentMessage::Log { level: Some("warn".into()), message: Some("hi".into()) }));
        let out = AgentMessage::parse(r#"{"type":"output","data":{"a":1}}"#);
        assert_eq!(out.ok(), Some(AgentMessage::Output { data: serde_json::json!({"a":1}) }));
        assert!(AgentMessage::parse(r#"{"type":"interrupt","value":"ok?"}"#).is_ok());
        assert!(AgentMessage::parse(r#"{"type":"bogus"}"#).is_err());
        assert!(AgentMessage::parse("not json").is_err());
    }
}
