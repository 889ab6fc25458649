//! Input checked once, at the edge: each rule is a type whose constructor is the only
//! way to get one, so an operation that takes a [`Priority`] never checks a priority.
//! Front ends parse what they received into these, then call the operation.

mod memory;

use std::collections::BTreeMap;
use std::time::Duration;

use agentd_bundle::Schema;
use agentd_core::{MultitaskStrategy, Scope, Scopes, Secret, Slug, ThreadId, ThreadStatus};
use serde_json::Value;

use crate::error::{Invalid, Result};

pub use memory::{
    MaxDepth, MemoryFilter, MemoryTtl, MemoryValue, memory_key, namespace, namespace_dotted, namespace_match,
};

/// Refuses control characters in `text`, except those `allowed` (line breaks in a
/// description): they would forge log lines and some stores cannot hold NUL at all.
fn no_control_characters(field: &'static str, text: &str, allowed: &[char]) -> Result<(), Invalid> {
    if text.chars().any(|c| c.is_control() && !allowed.contains(&c)) {
        return Err(Invalid::ControlCharacters { field });
    }
    Ok(())
}

/// An email address, trimmed and lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, Invalid> {
        let email = raw.trim().to_lowercase();
        let valid = email.len() <= 254
            && email
                .split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.') && !domain.contains('@'))
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid { Ok(Email(email)) } else { Err(Invalid::Email) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password: long enough to matter, short enough to hash. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 1024;

    pub fn parse(raw: String) -> Result<Password, Invalid> {
        match raw.chars().count() {
            n if n < Self::MIN_CHARS => Err(Invalid::WeakPassword { min: Self::MIN_CHARS }),
            n if n > Self::MAX_CHARS => Err(Invalid::PasswordTooLong { max: Self::MAX_CHARS }),
            _ => Ok(Password(raw)),
        }
    }

    pub(crate) fn into_inner(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A workspace's display name: 1 to 100 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceName(String);

impl WorkspaceName {
    const MAX: usize = 100;

    pub fn parse(raw: &str) -> Result<WorkspaceName, Invalid> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > Self::MAX {
            return Err(Invalid::WorkspaceName { max: Self::MAX });
        }
        no_control_characters("workspace_name", name, &[])?;
        Ok(WorkspaceName(name.to_owned()))
    }

    pub(crate) fn into_inner(self) -> String {
        self.0
    }
}

/// Workspace slugs a stranger must not take: they read as the platform's own (in URLs,
/// subdomains and support mail).
const RESERVED_WORKSPACE_SLUGS: &[&str] = &[
    "admin",
    "administrator",
    "agentd",
    "api",
    "app",
    "assets",
    "auth",
    "billing",
    "dashboard",
    "docs",
    "help",
    "internal",
    "login",
    "logout",
    "mail",
    "metrics",
    "operator",
    "root",
    "security",
    "signup",
    "static",
    "status",
    "support",
    "system",
    "www",
];

pub fn workspace_slug(raw: &str) -> Result<Slug, Invalid> {
    let slug = Slug::parse(raw).map_err(Invalid::WorkspaceSlug)?;
    if RESERVED_WORKSPACE_SLUGS.contains(&slug.as_str()) {
        return Err(Invalid::ReservedWorkspaceSlug { slug: slug.to_string() });
    }
    Ok(slug)
}

pub fn agent_slug(raw: &str) -> Result<Slug, Invalid> {
    Slug::parse(raw).map_err(Invalid::AgentSlug)
}

/// An agent's display name: not blank, at most 100 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentName(String);

impl AgentName {
    const MAX: usize = 100;

    pub fn parse(raw: String) -> Result<AgentName, Invalid> {
        if raw.trim().is_empty() {
            return Err(Invalid::Empty { field: "name" });
        }
        if raw.chars().count() > Self::MAX {
            return Err(Invalid::TooLong { field: "name", max: Self::MAX });
        }
        no_control_characters("name", &raw, &[])?;
        Ok(AgentName(raw))
    }

    pub(crate) fn into_inner(self) -> String {
        self.0
    }
}

/// An agent's description: at most 2000 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    const MAX: usize = 2000;

    pub fn parse(raw: String) -> Result<Description, Invalid> {
        if raw.chars().count() > Self::MAX {
            return Err(Invalid::TooLong { field: "description", max: Self::MAX });
        }
        no_control_characters("description", &raw, &['\n', '\r', '\t'])?;
        Ok(Description(raw))
    }

    pub(crate) fn into_inner(self) -> String {
        self.0
    }
}

/// An agent's tags: at most 20, each 1 to 40 characters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tags(Vec<String>);

impl Tags {
    const MAX_TAGS: usize = 20;
    const MAX_CHARS: usize = 40;

    pub fn parse(raw: Vec<String>) -> Result<Tags, Invalid> {
        let bad = |t: &String| t.is_empty() || t.chars().count() > Self::MAX_CHARS || t.chars().any(char::is_control);
        if raw.len() > Self::MAX_TAGS || raw.iter().any(bad) {
            return Err(Invalid::Tags { max_tags: Self::MAX_TAGS, max_chars: Self::MAX_CHARS });
        }
        Ok(Tags(raw))
    }

    pub(crate) fn into_inner(self) -> Vec<String> {
        self.0
    }
}

/// An API key's name: 1 to 100 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(String);

impl KeyName {
    const MAX: usize = 100;

    pub fn parse(raw: &str) -> Result<KeyName, Invalid> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > Self::MAX {
            return Err(Invalid::KeyName { max: Self::MAX });
        }
        no_control_characters("name", name, &[])?;
        Ok(KeyName(name.to_owned()))
    }

    pub(crate) fn into_inner(self) -> String {
        self.0
    }
}

/// The scopes asked for a new key: absent means all, an empty list is a mistake.
pub fn key_scopes(raw: Option<Vec<Scope>>) -> Result<Option<Scopes>, Invalid> {
    match raw {
        Some(list) if list.is_empty() => Err(Invalid::NoScopes),
        Some(list) => Ok(Some(Scopes::new(list))),
        None => Ok(None),
    }
}

/// How long a new key lives: 1 to 3650 days, or for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyExpiry(Option<u32>);

impl KeyExpiry {
    const MAX_DAYS: u32 = 3650;

    pub fn parse(days: Option<u32>) -> Result<KeyExpiry, Invalid> {
        match days {
            Some(d) if d == 0 || d > Self::MAX_DAYS => Err(Invalid::Expiry { max: Self::MAX_DAYS }),
            days => Ok(KeyExpiry(days)),
        }
    }

    pub(crate) fn days(self) -> Option<u32> {
        self.0
    }
}

/// 0 to 9; higher runs first. Absent: 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Priority(u8);

impl Priority {
    const MAX: u8 = 9;

    pub fn parse(raw: Option<u8>) -> Result<Priority, Invalid> {
        match raw.unwrap_or(0) {
            p if p > Self::MAX => Err(Invalid::Priority { max: Self::MAX }),
            p => Ok(Priority(p)),
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// 1 to 10 attempts. Absent: 1, since agents have side effects and retries are opt-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxAttempts(u32);

impl MaxAttempts {
    const MAX: u32 = 10;

    pub fn parse(raw: Option<u32>) -> Result<MaxAttempts, Invalid> {
        match raw.unwrap_or(1) {
            n if !(1..=Self::MAX).contains(&n) => Err(Invalid::MaxAttempts { max: Self::MAX }),
            n => Ok(MaxAttempts(n)),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for MaxAttempts {
    fn default() -> Self {
        MaxAttempts(1)
    }
}

/// A JSON object of at most 16 KiB that the caller attaches to an invocation. Absent: `{}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata(Value);

impl Metadata {
    const MAX_BYTES: usize = 16 * 1024;

    pub fn parse(raw: Option<Value>) -> Result<Metadata, Invalid> {
        let value = raw.unwrap_or_else(|| Value::Object(serde_json::Map::new()));
        if !value.is_object() || value.to_string().len() > Self::MAX_BYTES {
            return Err(Invalid::Metadata { max_bytes: Self::MAX_BYTES });
        }
        Ok(Metadata(value))
    }

    pub(crate) fn into_inner(self) -> Value {
        self.0
    }
}

impl Default for Metadata {
    fn default() -> Self {
        Metadata(Value::Object(serde_json::Map::new()))
    }
}

/// Deduplicates invocations for 24 h per tenant: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    const MAX: usize = 255;

    pub fn parse(raw: &str) -> Result<IdempotencyKey, Invalid> {
        let key = raw.trim();
        let valid = !key.is_empty() && key.len() <= Self::MAX && key.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        if valid { Ok(IdempotencyKey(key.to_owned())) } else { Err(Invalid::IdempotencyKey { max: Self::MAX }) }
    }

    pub(crate) fn into_inner(self) -> String {
        self.0
    }
}

/// How long a caller is willing to wait for an invocation to settle: at most 60 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTime(Duration);

impl WaitTime {
    pub const MAX_S: u64 = 60;

    pub fn parse_secs(secs: u64) -> Result<WaitTime, Invalid> {
        if secs > Self::MAX_S {
            return Err(Invalid::Wait { max_s: Self::MAX_S });
        }
        Ok(WaitTime(Duration::from_secs(secs)))
    }

    pub fn get(self) -> Duration {
        self.0
    }
}

/// Environment variables an agent's `config.env` or an invoke's `env` sets, by the rule
/// the manifest's `[env]` obeys too: well-formed names the platform does not keep for
/// itself, at most 100, values of at most 32 KiB without control characters but tab and
/// line breaks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnvVars(BTreeMap<String, String>);

impl EnvVars {
    pub fn parse(raw: BTreeMap<String, String>) -> Result<EnvVars, Invalid> {
        agentd_bundle::check_env(&raw).map_err(Invalid::Env)?;
        Ok(EnvVars(raw))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub(crate) fn into_inner(self) -> BTreeMap<String, String> {
        self.0
    }
}

/// The name of an agent's secret: an environment variable name the platform does not
/// keep for itself, by the rule the manifest's `[env]` obeys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretName(String);

impl SecretName {
    pub fn parse(raw: &str) -> Result<SecretName, Invalid> {
        agentd_bundle::check_env_name(raw).map_err(Invalid::SecretName)?;
        Ok(SecretName(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A secret's value: 1 byte to 64 KiB, without NUL (no environment variable can hold
/// one). Any other character is allowed: keys and certificates span lines. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Secret);

impl SecretValue {
    pub const MAX_BYTES: usize = 64 * 1024;

    pub fn parse(raw: String) -> Result<SecretValue, Invalid> {
        if raw.is_empty() {
            return Err(Invalid::SecretValue { problem: "is empty" });
        }
        if raw.len() > Self::MAX_BYTES {
            return Err(Invalid::SecretTooLarge { size: raw.len(), max: Self::MAX_BYTES });
        }
        if raw.contains('\0') {
            return Err(Invalid::SecretValue { problem: "contains NUL, which no environment variable can hold" });
        }
        Ok(SecretValue(Secret::new(raw)))
    }

    pub(crate) fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(<redacted>)")
    }
}

/// Which of an agent's schemas a [`JsonSchema`] is, for the messages that name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaField {
    Input,
    Output,
}

impl SchemaField {
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaField::Input => "input_schema",
            SchemaField::Output => "output_schema",
        }
    }
}

impl std::fmt::Display for SchemaField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A JSON Schema that compiles under the platform's schema policy (no `$ref` is ever
/// fetched; see `agentd_bundle::Schema`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonSchema(Value);

impl JsonSchema {
    pub fn parse(field: SchemaField, raw: Value) -> Result<JsonSchema, Invalid> {
        Schema::compile(&raw).map_err(|refusal| Invalid::Schema { field, refusal })?;
        Ok(JsonSchema(raw))
    }

    pub(crate) fn into_inner(self) -> Value {
        self.0
    }
}

/// A change to one of an agent's schemas: a new one, or none (the manifest's applies again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaChange {
    Set(JsonSchema),
    Clear,
}

impl SchemaChange {
    /// `null` clears the schema; anything else must be one.
    pub fn parse(field: SchemaField, raw: Option<Value>) -> Result<SchemaChange, Invalid> {
        match raw {
            None | Some(Value::Null) => Ok(SchemaChange::Clear),
            Some(schema) => JsonSchema::parse(field, schema).map(SchemaChange::Set),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(Email::parse(" Ada@Example.COM ").map(|e| e.0), Ok("ada@example.com".to_owned()));
        for bad in ["ada", "@example.com", "ada@example", "a b@example.com", "a@b@c.d"] {
            assert_eq!(Email::parse(bad), Err(Invalid::Email), "{bad}");
        }
    }

    #[test]
    fn reserved_workspace_slugs_are_refused() {
        for reserved in ["admin", "www", "api"] {
            assert!(matches!(workspace_slug(reserved), Err(Invalid::ReservedWorkspaceSlug { .. })), "{reserved}");
        }
        assert!(workspace_slug("acme").is_ok() && workspace_slug("admins").is_ok());
    }

    #[test]
    fn invocation_options_outside_their_range_are_refused() {
        assert_eq!(Priority::parse(None), Ok(Priority(0)));
        assert!(Priority::parse(Some(10)).is_err());
        assert_eq!(MaxAttempts::parse(None), Ok(MaxAttempts(1)));
        assert!(MaxAttempts::parse(Some(0)).is_err() && MaxAttempts::parse(Some(11)).is_err());
        assert!(Metadata::parse(Some(serde_json::json!([1]))).is_err());
        assert!(Metadata::parse(Some(serde_json::json!({"k": "x".repeat(17 * 1024)}))).is_err());
        assert!(WaitTime::parse_secs(61).is_err());
        assert!(IdempotencyKey::parse("").is_err() && IdempotencyKey::parse("k\u{7}").is_err());
    }

    #[test]
    fn names_tags_and_passwords_have_bounds() {
        assert!(AgentName::parse("  ".into()).is_err());
        assert!(AgentName::parse("a\0b".into()).is_err() && KeyName::parse("ci\nkey").is_err());
        assert!(Description::parse("two\nlines".into()).is_ok() && Description::parse("nul\0".into()).is_err());
        assert!(Email::parse("ada\0@example.com").is_err());
        assert!(Tags::parse(vec![String::new()]).is_err());
        assert!(Tags::parse((0..21).map(|i| i.to_string()).collect()).is_err());
        assert!(Password::parse("short".into()).is_err());
        assert!(format!("{:?}", Password::parse("long enough secret".into())).contains("redacted"));
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn env_vars_follow_the_platforms_rule() {
        let vars = EnvVars::parse(env(&[("MODEL", "small"), ("PEM", "a\nb")])).unwrap();
        assert_eq!(vars.names().collect::<Vec<_>>(), ["MODEL", "PEM"]);
        assert_eq!(EnvVars::parse(BTreeMap::new()), Ok(EnvVars::default()));
        for refused in [("PATH", "/x"), ("AGENTD_TOKEN", "t"), ("LD_PRELOAD", "x"), ("https_proxy", "h")] {
            let err = EnvVars::parse(env(&[refused])).unwrap_err();
            assert!(matches!(err, Invalid::Env(agentd_bundle::EnvRefusal::Reserved { .. })), "{refused:?}");
            assert!(err.to_string().contains(refused.0), "{err}");
        }
        assert!(EnvVars::parse(env(&[("1X", "v")])).is_err());
        assert!(EnvVars::parse(env(&[("X", "bell\u{7}")])).is_err());
        assert!(EnvVars::parse(env(&[("X", "nul\0")])).is_err());
    }

    #[test]
    fn secret_names_follow_the_env_rule_and_values_have_bounds() {
        assert_eq!(SecretName::parse("OPENAI_API_KEY").map(|n| n.0), Ok("OPENAI_API_KEY".to_owned()));
        for refused in ["PATH", "AGENTD_TOKEN", "LD_PRELOAD", "https_proxy", "1X", "A-B", ""] {
            assert!(matches!(SecretName::parse(refused), Err(Invalid::SecretName(_))), "{refused:?}");
        }
        assert!(SecretValue::parse("-----BEGIN KEY-----\nabc\n-----END KEY-----\n".into()).is_ok());
        assert!(SecretValue::parse("x".repeat(SecretValue::MAX_BYTES)).is_ok());
        let big = SecretValue::parse("x".repeat(SecretValue::MAX_BYTES + 1));
        assert_eq!(big, Err(Invalid::SecretTooLarge { size: SecretValue::MAX_BYTES + 1, max: SecretValue::MAX_BYTES }));
        assert!(matches!(SecretValue::parse(String::new()), Err(Invalid::SecretValue { .. })));
        assert!(matches!(SecretValue::parse("a\0b".into()), Err(Invalid::SecretValue { .. })));
        assert_eq!(format!("{:?}", SecretValue::parse("hunter2".into()).unwrap()), "SecretValue(<redacted>)");
    }

    #[test]
    fn schemas_must_compile_and_null_clears() {
        let schema = serde_json::json!({"type": "object"});
        assert_eq!(
            SchemaChange::parse(SchemaField::Input, Some(schema.clone())),
            Ok(SchemaChange::Set(JsonSchema(schema)))
        );
        assert_eq!(SchemaChange::parse(SchemaField::Output, Some(Value::Null)), Ok(SchemaChange::Clear));
        let err = SchemaChange::parse(SchemaField::Output, Some(serde_json::json!({"type": 3}))).unwrap_err();
        assert!(err.to_string().starts_with("output_schema "), "{err}");
        assert!(JsonSchema::parse(SchemaField::Input, serde_json::json!("string")).is_err());
        assert!(JsonSchema::parse(SchemaField::Input, serde_json::json!({"$ref": "https://example.com/s"})).is_err());
    }
}

/// A thread id given in a request body.
pub fn thread_id(raw: &str) -> Result<ThreadId, Invalid> {
    ThreadId::parse(raw).map_err(Invalid::ThreadId)
}

/// `multitask_strategy`: `reject | enqueue | interrupt | rollback`; absent: `enqueue`.
pub fn multitask_strategy(raw: Option<&str>) -> Result<Option<MultitaskStrategy>, Invalid> {
    raw.map(|r| MultitaskStrategy::parse(r).map_err(|detail| Invalid::Word { field: "multitask_strategy", detail }))
        .transpose()
}

/// A thread status in a list's filter.
pub fn thread_status(raw: Option<&str>) -> Result<Option<ThreadStatus>, Invalid> {
    raw.map(|r| ThreadStatus::parse(r).map_err(|detail| Invalid::Word { field: "status", detail })).transpose()
}

/// A thread's state set by hand: any JSON value of at most 1 MiB (it is handed to every
/// later run of the thread on stdin).
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadStateValue(Value);

impl ThreadStateValue {
    pub const MAX_BYTES: usize = 1024 * 1024;

    pub fn parse(value: Value) -> Result<ThreadStateValue, Invalid> {
        let size = value.to_string().len();
        if size > Self::MAX_BYTES {
            return Err(Invalid::StateTooLarge { size, max: Self::MAX_BYTES });
        }
        Ok(ThreadStateValue(value))
    }

    pub(crate) fn get(&self) -> &Value {
        &self.0
    }
}

/// A field name a JSON filter may compare: 1 to `max` of `A-Z a-z 0-9 _ -`, so that it is
/// a safe JSON path on both engines.
pub(crate) fn filter_field_name_ok(name: &str, max: usize) -> bool {
    (1..=max).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A filter on metadata: a JSON object (as text, from a query string) of at most 16
/// fields named with letters, digits, `_` or `-`, each matched for equality.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetadataFilter(serde_json::Map<String, Value>);

impl MetadataFilter {
    const MAX_FIELDS: usize = 16;

    pub fn parse(raw: Option<&str>) -> Result<MetadataFilter, Invalid> {
        let Some(raw) = raw else { return Ok(MetadataFilter::default()) };
        let refused = Invalid::MetadataFilter { max: Self::MAX_FIELDS };
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(raw) else { return Err(refused) };
        if fields.len() > Self::MAX_FIELDS || !fields.keys().all(|k| filter_field_name_ok(k, 64)) {
            return Err(refused);
        }
        Ok(MetadataFilter(fields))
    }

    pub(crate) fn into_inner(self) -> serde_json::Map<String, Value> {
        self.0
    }
}
