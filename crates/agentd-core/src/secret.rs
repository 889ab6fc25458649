//! A value that must never reach a log: its `Debug` and `Display` print `<redacted>`,
//! and reading it takes an explicit [`Secret::expose`]. It serializes as the plain string,
//! because some secrets travel on purpose (a run's token and an agent's secrets, in the
//! worker protocol); logs print values through `Debug`/`Display`, never through serde.
//! [`RunSecrets`] carries an agent's secrets to the worker that runs it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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

/// An agent's secrets as one run gets them, decrypted: name → value, to be set as
/// environment variables. `Debug` shows the names only.
///
/// It serializes with the values in the clear, for one purpose: the worker protocol's
/// claim response, which hands a remote worker what it must put into the run. Nothing
/// else serializes it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RunSecrets(BTreeMap<String, Secret>);

impl RunSecrets {
    pub fn insert(&mut self, name: impl Into<String>, value: Secret) {
        self.0.insert(name.into(), value);
    }

    pub fn get(&self, name: &str) -> Option<&Secret> {
        self.0.get(name)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Name and value, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Secret)> {
        self.0.iter().map(|(name, value)| (name.as_str(), value))
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

impl fmt::Debug for RunSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RunSecrets").field(&self.0.keys().collect::<Vec<_>>()).finish()
    }
}

impl Serialize for RunSecrets {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, value)| (name, value.expose())))
    }
}

impl<'de> Deserialize<'de> for RunSecrets {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let plain = BTreeMap::<String, String>::deserialize(deserializer)?;
        Ok(RunSecrets(plain.into_iter().map(|(name, value)| (name, Secret(value))).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_secrets_show_their_names_only_and_travel_whole() {
        let mut secrets = RunSecrets::default();
        secrets.insert("API_KEY", Secret::new("hunter2"));
        assert_eq!(format!("{secrets:?}"), "RunSecrets([\"API_KEY\"])");
        let wire = serde_json::to_string(&secrets).unwrap();
        assert_eq!(wire, r#"{"API_KEY":"hunter2"}"#);
        let back: RunSecrets = serde_json::from_str(&wire).unwrap();
        assert_eq!(back, secrets);
    }

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
