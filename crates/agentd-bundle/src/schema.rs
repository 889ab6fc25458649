//! JSON Schemas of an agent's input and output (`input_schema`, `output_schema`), from the
//! manifest or set on the agent. Every schema is compiled here, under one policy, whoever
//! wrote it: schemas come from strangers and are applied on the server.
//!
//! - Draft 2020-12 unless the schema's `$schema` names another draft.
//! - `$ref` resolves only inside the schema itself: nothing is ever fetched over the
//!   network or read from a file (the crate is built without those features, and the
//!   retriever refuses every URI in any case).
//! - `pattern` uses a regex engine that runs in linear time, so a schema cannot make
//!   validation backtrack for ever.

use jsonschema::{Draft, PatternOptions, Retrieve, Uri, Validator};
use serde_json::Value;

/// Largest schema accepted, in bytes of its JSON.
pub const MAX_SCHEMA_BYTES: usize = 64 * 1024;
/// At most this many violations are reported for one document.
pub const MAX_VIOLATIONS: usize = 20;
/// Compiled size limit of one `pattern`, in bytes.
const MAX_PATTERN_BYTES: usize = 1024 * 1024;

/// A compiled schema, ready to check documents against.
pub struct Schema(Validator);

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Schema(..)")
    }
}

/// Where a document failed its schema: a JSON Pointer into the document (`""` for the
/// document itself) and what was wrong there.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SchemaViolation {
    pub path: String,
    pub message: String,
}

/// Why a schema was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaRefusal {
    #[error("must be a JSON object (a JSON Schema)")]
    NotAnObject,
    #[error("is {size} bytes; at most {MAX_SCHEMA_BYTES} are allowed")]
    TooLarge { size: usize },
    #[error("is not a valid JSON Schema: {reason}")]
    Invalid { reason: String },
}

/// Refuses every remote or file reference: a schema may only refer to itself.
struct NoRetrieval;

impl Retrieve for NoRetrieval {
    fn retrieve(&self, uri: &Uri<String>) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("`$ref` to {uri} is not fetched; put the definition in the schema's `$defs`").into())
    }
}

impl Schema {
    /// Compiles `schema` under the policy above.
    pub fn compile(schema: &Value) -> Result<Schema, SchemaRefusal> {
        if !schema.is_object() {
            return Err(SchemaRefusal::NotAnObject);
        }
        let size = schema.to_string().len();
        if size > MAX_SCHEMA_BYTES {
            return Err(SchemaRefusal::TooLarge { size });
        }
        jsonschema::options()
            .with_draft(Draft::Draft202012)
            .with_retriever(NoRetrieval)
            .with_pattern_options(PatternOptions::regex().size_limit(MAX_PATTERN_BYTES))
            .build(schema)
            .map(Schema)
            .map_err(|err| SchemaRefusal::Invalid { reason: one_line(&err.to_string()) })
    }

    /// Where `document` breaks the schema, at most [`MAX_VIOLATIONS`] places; empty when it
    /// matches.
    pub fn violations(&self, document: &Value) -> Vec<SchemaViolation> {
        self.0
            .iter_errors(document)
            .take(MAX_VIOLATIONS)
            .map(|err| SchemaViolation { path: err.instance_path().to_string(), message: one_line(&err.to_string()) })
            .collect()
    }
}

/// Messages quote parts of the document, which may be long or hold line breaks.
fn one_line(message: &str) -> String {
    const MAX_CHARS: usize = 300;
    let flat: String = message.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if flat.chars().count() <= MAX_CHARS {
        return flat;
    }
    let mut short: String = flat.chars().take(MAX_CHARS).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn violations_name_the_path() {
        let schema = Schema::compile(&json!({
            "type": "object",
            "required": ["text"],
            "properties": {"text": {"type": "string"}, "n": {"type": "integer", "minimum": 1}}
        }))
        .unwrap();
        assert!(schema.violations(&json!({"text": "hi"})).is_empty());
        let found = schema.violations(&json!({"text": 5, "n": 0}));
        let paths: Vec<&str> = found.iter().map(|v| v.path.as_str()).collect();
        assert!(paths.contains(&"/text") && paths.contains(&"/n"), "{found:?}");
        let missing = schema.violations(&json!({}));
        assert_eq!(missing[0].path, "");
        assert!(missing[0].message.contains("text"), "{missing:?}");
    }

    #[test]
    fn schemas_that_do_not_compile_are_refused() {
        assert_eq!(Schema::compile(&json!([1])).unwrap_err(), SchemaRefusal::NotAnObject);
        assert!(matches!(Schema::compile(&json!({"type": "strnig"})), Err(SchemaRefusal::Invalid { .. })));
        assert!(matches!(Schema::compile(&json!({"minimum": "one"})), Err(SchemaRefusal::Invalid { .. })));
        let huge = json!({"description": "x".repeat(MAX_SCHEMA_BYTES)});
        assert!(matches!(Schema::compile(&huge), Err(SchemaRefusal::TooLarge { .. })));
    }

    #[test]
    fn references_resolve_only_inside_the_schema() {
        let local = json!({"$defs": {"n": {"type": "integer"}}, "properties": {"n": {"$ref": "#/$defs/n"}}});
        assert_eq!(Schema::compile(&local).unwrap().violations(&json!({"n": "x"}))[0].path, "/n");
        for remote in ["https://example.com/s.json", "file:///etc/passwd", "http://127.0.0.1:1/x"] {
            let err = Schema::compile(&json!({"$ref": remote})).unwrap_err();
            assert!(matches!(err, SchemaRefusal::Invalid { .. }), "{remote}: {err:?}");
        }
    }

    #[test]
    fn many_violations_are_capped() {
        let schema = Schema::compile(&json!({"items": {"type": "string"}})).unwrap();
        let document = Value::Array((0..100).map(|i| json!(i)).collect());
        assert_eq!(schema.violations(&document).len(), MAX_VIOLATIONS);
    }
}
