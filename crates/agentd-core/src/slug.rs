//! Slugs name agents and workspaces in URLs: short, lowercase, stable.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error("slug must be 1 to 63 characters long, got {0}")]
    Length(usize),
    #[error("slug may contain only lowercase letters, digits and '-', and must start and end with a letter or digit")]
    Characters,
}

#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Slug(String);

impl Slug {
    pub fn parse(value: &str) -> Result<Slug, SlugError> {
        let len = value.chars().count();
        if !(1..=63).contains(&len) {
            return Err(SlugError::Length(len));
        }
        let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
        let edge_ok = |c: Option<char>| c.is_some_and(|c| c != '-');
        if !value.chars().all(allowed) || !edge_ok(value.chars().next()) || !edge_ok(value.chars().last()) {
            return Err(SlugError::Characters);
        }
        Ok(Slug(value.to_owned()))
    }

    pub fn from_trusted(value: String) -> Slug {
        Slug(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl<'de> Deserialize<'de> for Slug {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Slug::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_lowercase_words_joined_by_dashes() {
        for ok in ["a", "echo", "my-agent-2", "0x"] {
            assert!(Slug::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_empty_long_uppercase_and_edge_dashes() {
        assert_eq!(Slug::parse(""), Err(SlugError::Length(0)));
        assert_eq!(Slug::parse(&"a".repeat(64)), Err(SlugError::Length(64)));
        for bad in ["Echo", "-a", "a-", "a_b", "a b", "ü", "../x"] {
            assert_eq!(Slug::parse(bad), Err(SlugError::Characters), "{bad}");
        }
    }
}
