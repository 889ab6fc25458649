//! A value that must never reach a log: its `Debug` and `Display` print `<redacted>`,
//! and reading it takes an explicit [`Secret::expose`]. It serializes as the plain string,
//! because some secrets travel on purpose (a run's token in the worker protocol); logs
//! print values through `Debug`/`Display`, never through serde.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn into_exposed(self) -> String {
        self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_prints_as_redacted() {
        let s = Secret::new("agd_abc_def");
        assert_eq!(format!("{s:?} {s}"), "<redacted> <redacted>");
        assert_eq!(s.expose(), "agd_abc_def");
    }

    #[test]
    fn a_secret_travels_as_its_plain_string() {
        let s = Secret::new("agr_abc");
        let json = serde_json::to_string(&s).unwrap_or_default();
        assert_eq!(json, "\"agr_abc\"");
        let back: Secret = serde_json::from_str(&json).unwrap_or_else(|_| Secret::new(""));
        assert_eq!(back, s);
    }
}
