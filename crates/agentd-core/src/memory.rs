//! The vocabulary of the tenant's long-term memory store (`/v1/store`, shaped after
//! LangGraph's store): JSON items addressed by a namespace (a path of labels) and a key.
//! The code calls the concept "memory" so it is not confused with the database layer.
//!
//! A namespace is kept as its labels joined by `.`: LangGraph's SDK joins them that way
//! in query strings, so no label may contain one, and the joined text is unambiguous.
//! Prefix matching and sorting then work on the joined text byte by byte.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::timestamp::Timestamp;

/// Why a list of labels is not a namespace (or a namespace prefix or suffix).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamespaceError {
    #[error("give 1 to {max} labels")]
    Empty { max: usize },
    #[error("at most {max} labels, got {got}")]
    TooDeep { got: usize, max: usize },
    #[error("label {position} is empty")]
    EmptyLabel { position: usize },
    #[error("label {position} contains `.`, which separates labels")]
    Dot { position: usize },
    #[error("label {position} is longer than {max} characters")]
    LabelTooLong { position: usize, max: usize },
    #[error("label {position} contains control characters")]
    ControlCharacters { position: usize },
}

/// A namespace of 1 to [`Namespace::MAX_DEPTH`] labels, each non-empty, without `.` or
/// control characters, at most [`Namespace::MAX_LABEL_CHARS`] characters long.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Namespace(Vec<String>);

impl Namespace {
    pub const MAX_DEPTH: usize = 10;
    pub const MAX_LABEL_CHARS: usize = 128;

    pub fn parse(labels: Vec<String>) -> Result<Namespace, NamespaceError> {
        match Namespace::parse_partial(labels)? {
            Some(namespace) => Ok(namespace),
            None => Err(NamespaceError::Empty { max: Self::MAX_DEPTH }),
        }
    }

    /// Labels joined by `.`, as a query string carries them (`?namespace=users.ada`).
    pub fn parse_dotted(dotted: &str) -> Result<Namespace, NamespaceError> {
        Namespace::parse(dotted.split('.').map(str::to_owned).collect())
    }

    /// A prefix or suffix to match namespaces with: the same rules, but it may have no
    /// label at all (`None`), which matches every namespace.
    pub fn parse_partial(labels: Vec<String>) -> Result<Option<Namespace>, NamespaceError> {
        if labels.len() > Self::MAX_DEPTH {
            return Err(NamespaceError::TooDeep { got: labels.len(), max: Self::MAX_DEPTH });
        }
        for (index, label) in labels.iter().enumerate() {
            let position = index + 1;
            if label.is_empty() {
                return Err(NamespaceError::EmptyLabel { position });
            }
            if label.contains('.') {
                return Err(NamespaceError::Dot { position });
            }
            if label.chars().count() > Self::MAX_LABEL_CHARS {
                return Err(NamespaceError::LabelTooLong { position, max: Self::MAX_LABEL_CHARS });
            }
            if label.chars().any(char::is_control) {
                return Err(NamespaceError::ControlCharacters { position });
            }
        }
        Ok((!labels.is_empty()).then_some(Namespace(labels)))
    }

    /// A namespace the store wrote itself, from its joined form.
    pub fn from_dotted_trusted(dotted: &str) -> Namespace {
        Namespace(dotted.split('.').map(str::to_owned).collect())
    }

    pub fn labels(&self) -> &[String] {
        &self.0
    }

    pub fn depth(&self) -> usize {
        self.0.len()
    }

    /// The labels joined by `.`: how the store keeps and compares namespaces.
    pub fn dotted(&self) -> String {
        self.0.join(".")
    }

    pub fn into_labels(self) -> Vec<String> {
        self.0
    }
}

/// Why a text is not an item's key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MemoryKeyError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    #[error("must not contain control characters")]
    ControlCharacters,
}

/// An item's key within its namespace: 1 to [`MemoryKey::MAX_CHARS`] characters without
/// control characters. Any other character, `.` included, is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemoryKey(String);

impl MemoryKey {
    pub const MAX_CHARS: usize = 512;

    pub fn parse(raw: String) -> Result<MemoryKey, MemoryKeyError> {
        if raw.is_empty() {
            return Err(MemoryKeyError::Empty);
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(MemoryKeyError::TooLong { max: Self::MAX_CHARS });
        }
        if raw.chars().any(char::is_control) {
            return Err(MemoryKeyError::ControlCharacters);
        }
        Ok(MemoryKey(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One item of the memory store, as the API shows it (LangGraph's `Item`, plus when it
/// expires).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryItem {
    pub namespace: Vec<String>,
    pub key: String,
    pub value: Value,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When a `ttl_s` was given: the instant the item stops being readable.
    pub expires_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(raw: &[&str]) -> Vec<String> {
        raw.iter().map(|l| (*l).to_owned()).collect()
    }

    #[test]
    fn a_namespace_has_one_to_ten_clean_labels() {
        let namespace = Namespace::parse(labels(&["users", "ada", "prefs"])).unwrap();
        assert_eq!(namespace.dotted(), "users.ada.prefs");
        assert_eq!(Namespace::from_dotted_trusted("users.ada.prefs"), namespace);
        assert_eq!(Namespace::parse(vec![]), Err(NamespaceError::Empty { max: 10 }));
        assert_eq!(Namespace::parse(labels(&["a"; 11])), Err(NamespaceError::TooDeep { got: 11, max: 10 }));
        assert_eq!(Namespace::parse(labels(&["a", ""])), Err(NamespaceError::EmptyLabel { position: 2 }));
        assert_eq!(Namespace::parse(labels(&["a.b"])), Err(NamespaceError::Dot { position: 1 }));
        assert_eq!(Namespace::parse(labels(&["a\u{0}"])), Err(NamespaceError::ControlCharacters { position: 1 }));
        let long = "é".repeat(129);
        assert_eq!(Namespace::parse(vec![long]), Err(NamespaceError::LabelTooLong { position: 1, max: 128 }));
        assert!(Namespace::parse(vec!["é".repeat(128), "with space".into(), "*".into()]).is_ok());
    }

    #[test]
    fn a_dotted_namespace_splits_on_every_dot_and_a_partial_one_may_be_empty() {
        assert_eq!(Namespace::parse_dotted("a.b").unwrap().labels(), ["a", "b"]);
        assert_eq!(Namespace::parse_dotted("a..b"), Err(NamespaceError::EmptyLabel { position: 2 }));
        assert_eq!(Namespace::parse_dotted(""), Err(NamespaceError::EmptyLabel { position: 1 }));
        assert_eq!(Namespace::parse_partial(vec![]), Ok(None));
        assert!(Namespace::parse_partial(labels(&["", "x"])).is_err());
    }

    #[test]
    fn a_key_is_bounded_text_without_control_characters() {
        assert_eq!(MemoryKey::parse("profile.v2 #1".into()).unwrap().as_str(), "profile.v2 #1");
        assert_eq!(MemoryKey::parse(String::new()), Err(MemoryKeyError::Empty));
        assert_eq!(MemoryKey::parse("k".repeat(513)), Err(MemoryKeyError::TooLong { max: 512 }));
        assert_eq!(MemoryKey::parse("line\nbreak".into()), Err(MemoryKeyError::ControlCharacters));
    }
}
