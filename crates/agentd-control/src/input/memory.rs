//! The memory store's input rules: namespaces and keys (their rules live with the types
//! in `agentd_core::memory`; here they get the field they came in), values, TTLs,
//! filters and the depth namespaces are cut to.

use agentd_core::{MemoryKey, Namespace};
use serde_json::{Map, Value};

use crate::error::Invalid;

/// The namespace in `field`: 1 to 10 labels.
pub fn namespace(field: &'static str, labels: Vec<String>) -> Result<Namespace, Invalid> {
    Namespace::parse(labels).map_err(|refusal| Invalid::Namespace { field, refusal })
}

/// The namespace in `field` of a query string, its labels joined by `.`.
pub fn namespace_dotted(field: &'static str, dotted: &str) -> Result<Namespace, Invalid> {
    Namespace::parse_dotted(dotted).map_err(|refusal| Invalid::Namespace { field, refusal })
}

/// A prefix or suffix in `field`: absent or empty matches every namespace.
pub fn namespace_match(field: &'static str, labels: Option<Vec<String>>) -> Result<Option<Namespace>, Invalid> {
    Namespace::parse_partial(labels.unwrap_or_default()).map_err(|refusal| Invalid::Namespace { field, refusal })
}

pub fn memory_key(raw: String) -> Result<MemoryKey, Invalid> {
    MemoryKey::parse(raw).map_err(Invalid::MemoryKey)
}

/// Whether any string or object key in `value` holds a NUL: PostgreSQL's `jsonb`, which
/// filters compare in, cannot represent one, so both engines refuse it alike.
fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(fields) => fields.iter().any(|(name, v)| name.contains('\0') || holds_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// An item's value: any JSON without NUL characters in its strings. Its size is checked
/// against the tenant's `max_store_item_bytes` by the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryValue(Value);

impl MemoryValue {
    pub fn parse(raw: Value) -> Result<MemoryValue, Invalid> {
        if holds_nul(&raw) {
            return Err(Invalid::NulInValue);
        }
        Ok(MemoryValue(raw))
    }

    pub(crate) fn into_inner(self) -> Value {
        self.0
    }
}

/// How long an item lives: 1 s to a year. Absent: until it is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryTtl(u32);

impl MemoryTtl {
    pub const MAX_S: u32 = 365 * 24 * 3600;

    pub fn parse(raw: Option<u64>) -> Result<Option<MemoryTtl>, Invalid> {
        match raw {
            None => Ok(None),
            Some(s) if (1..=u64::from(Self::MAX_S)).contains(&s) => Ok(Some(MemoryTtl(s as u32))),
            Some(_) => Err(Invalid::MemoryTtl { max: Self::MAX_S }),
        }
    }

    pub fn millis(self) -> i64 {
        i64::from(self.0) * 1000
    }
}

/// Equality on top-level fields of items' values: at most 20 fields, each named by 1 to
/// 64 of `A-Z a-z 0-9 _ -`, so that a name is also a safe JSON path on every engine.
/// Absent: every item matches.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemoryFilter(Map<String, Value>);

impl MemoryFilter {
    pub const MAX_FIELDS: usize = 20;
    pub const MAX_FIELD_CHARS: usize = 64;

    pub fn parse(raw: Option<Map<String, Value>>) -> Result<MemoryFilter, Invalid> {
        let fields = raw.unwrap_or_default();
        if fields.len() > Self::MAX_FIELDS {
            return Err(Invalid::FilterTooLarge { max: Self::MAX_FIELDS });
        }
        if let Some(name) = fields.keys().find(|name| !super::filter_field_name_ok(name, Self::MAX_FIELD_CHARS)) {
            let field = name.chars().filter(|c| !c.is_control()).take(Self::MAX_FIELD_CHARS).collect();
            return Err(Invalid::FilterField { field, max_chars: Self::MAX_FIELD_CHARS });
        }
        if fields.values().any(holds_nul) {
            return Err(Invalid::NulInFilter);
        }
        Ok(MemoryFilter(fields))
    }

    pub(crate) fn into_inner(self) -> Map<String, Value> {
        self.0
    }
}

/// How many labels listed namespaces are cut to: at least 1. Absent, or deeper than any
/// namespace can be: not cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxDepth(usize);

impl MaxDepth {
    pub fn parse(raw: Option<u32>) -> Result<MaxDepth, Invalid> {
        match raw {
            Some(0) => Err(Invalid::MaxDepth),
            Some(depth) => Ok(MaxDepth((depth as usize).min(Namespace::MAX_DEPTH))),
            None => Ok(MaxDepth(Namespace::MAX_DEPTH)),
        }
    }

    pub fn get(self) -> usize {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(value: Value) -> Result<MemoryFilter, Invalid> {
        MemoryFilter::parse(serde_json::from_value(value).unwrap())
    }

    #[test]
    fn refusals_name_the_field_they_came_in() {
        let err = namespace("namespace_prefix", vec!["a.b".into()]).unwrap_err();
        assert_eq!(err.to_string(), "namespace_prefix: label 1 contains `.`, which separates labels");
        assert!(namespace_dotted("namespace", "a..b").unwrap_err().to_string().starts_with("namespace: label 2"));
        assert_eq!(namespace_match("suffix", None), Ok(None));
        assert_eq!(memory_key(String::new()).unwrap_err().to_string(), "key must not be empty");
    }

    #[test]
    fn values_and_filters_may_not_hold_nul_anywhere() {
        assert!(MemoryValue::parse(serde_json::json!({"a": ["ok", {"b": "fine\\u0000"}]})).is_ok());
        for bad in [serde_json::json!("a\u{0}"), serde_json::json!([{"x": "\u{0}"}]), serde_json::json!({"k\u{0}": 1})]
        {
            assert_eq!(MemoryValue::parse(bad.clone()), Err(Invalid::NulInValue), "{bad}");
        }
        assert_eq!(filter(serde_json::json!({"x": "\u{0}"})), Err(Invalid::NulInFilter));
    }

    #[test]
    fn ttls_are_one_second_to_a_year() {
        assert_eq!(MemoryTtl::parse(None), Ok(None));
        assert_eq!(MemoryTtl::parse(Some(1)).map(|t| t.map(MemoryTtl::millis)), Ok(Some(1000)));
        assert!(MemoryTtl::parse(Some(31_536_000)).is_ok());
        assert!(MemoryTtl::parse(Some(0)).is_err() && MemoryTtl::parse(Some(31_536_001)).is_err());
    }

    #[test]
    fn filter_fields_are_safe_names_and_few() {
        assert!(filter(serde_json::json!({"kind": "note", "user_id-2": 1})).is_ok());
        for bad in ["", "a.b", "a\"b", "$x", "é", "a b"] {
            let err = filter(serde_json::json!({bad: 1})).unwrap_err();
            assert!(matches!(err, Invalid::FilterField { .. }), "{bad}");
        }
        let many: Map<String, Value> = (0..21).map(|i| (format!("f{i}"), Value::Null)).collect();
        assert_eq!(MemoryFilter::parse(Some(many)), Err(Invalid::FilterTooLarge { max: 20 }));
    }

    #[test]
    fn max_depth_is_at_least_one_and_deeper_than_ten_means_uncut() {
        assert_eq!(MaxDepth::parse(Some(0)), Err(Invalid::MaxDepth));
        assert_eq!(MaxDepth::parse(Some(2)).map(MaxDepth::get), Ok(2));
        assert_eq!(MaxDepth::parse(Some(50)).map(MaxDepth::get), Ok(10));
        assert_eq!(MaxDepth::parse(None).map(MaxDepth::get), Ok(10));
    }
}
