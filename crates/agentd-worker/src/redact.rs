//! Keeping a run's secrets out of what the run records: every occurrence of a secret's
//! value in a line the agent printed, an event it sent (message, level, data), its
//! output, its question and the error its run ended with becomes `[redacted:NAME]`
//! before anything leaves the worker.
//!
//! - Values shorter than [`MIN_REDACTED_BYTES`] are not looked for: a secret `1` would
//!   turn every digit of a log into a marker and hide nothing an attacker could not guess.
//! - A value that spans lines is also looked for line by line (each line of at least
//!   that length), since output is recorded a line at a time.
//! - Where two secrets' occurrences overlap, the whole stretch is one marker, so no part
//!   of either shows.
//! - JSON is walked: strings and object keys are redacted in place, and a number whose
//!   digits contain a value becomes the marker as a string.
//!
//! It cannot see a value the agent transformed (encoded, reversed, split across lines
//! or across the 64 KiB cut of an over-long line); SECURITY.md says so.

use agentd_core::RunSecrets;
use agentd_core::queue::Completion;
use serde_json::Value;

/// Shorter values are not redacted.
pub(crate) const MIN_REDACTED_BYTES: usize = 4;

/// The values to look for in one run's records, longest first.
#[derive(Default)]
pub(crate) struct Redactor {
    patterns: Vec<(String, String)>,
}

impl Redactor {
    pub(crate) fn new(secrets: &RunSecrets) -> Redactor {
        let mut patterns: Vec<(String, String)> = Vec::new();
        for (name, value) in secrets.iter() {
            let value = value.expose();
            let lines = value.lines().filter(|line| *line != value);
            for pattern in std::iter::once(value).chain(lines) {
                if pattern.len() >= MIN_REDACTED_BYTES && !patterns.iter().any(|(p, _)| p == pattern) {
                    patterns.push((pattern.to_owned(), name.to_owned()));
                }
            }
        }
        patterns.sort_by_key(|(pattern, _)| std::cmp::Reverse(pattern.len()));
        Redactor { patterns }
    }

    /// `text` with every occurrence of a value replaced by its marker.
    pub(crate) fn text(&self, text: &str) -> String {
        if self.patterns.is_empty() {
            return text.to_owned();
        }
        // Every occurrence (overlapping ones too) as (start, end, name).
        let mut found: Vec<(usize, usize, &str)> = Vec::new();
        for (pattern, name) in &self.patterns {
            let mut from = 0;
            while let Some(at) = text[from..].find(pattern.as_str()) {
                let start = from + at;
                found.push((start, start + pattern.len(), name));
                // Next try one character on: a char boundary, so the slice stays valid.
                from = start + text[start..].chars().next().map_or(1, char::len_utf8);
            }
        }
        if found.is_empty() {
            return text.to_owned();
        }
        // Earliest first; at one start, the longest.
        found.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        let mut current: Option<(usize, usize, &str)> = None;
        for (start, end, name) in found {
            match &mut current {
                Some((_, cur_end, _)) if start < *cur_end => *cur_end = (*cur_end).max(end),
                _ => {
                    if let Some((cur_start, cur_end, cur_name)) = current.take() {
                        out.push_str(&text[copied..cur_start]);
                        out.push_str(&marker(cur_name));
                        copied = cur_end;
                    }
                    current = Some((start, end, name));
                }
            }
        }
        if let Some((cur_start, cur_end, cur_name)) = current {
            out.push_str(&text[copied..cur_start]);
            out.push_str(&marker(cur_name));
            copied = cur_end;
        }
        out.push_str(&text[copied..]);
        out
    }

    pub(crate) fn optional_text(&self, text: Option<String>) -> Option<String> {
        text.map(|t| self.text(&t))
    }

    /// `value` with every string, key and number that holds a value redacted.
    pub(crate) fn json(&self, value: Value) -> Value {
        if self.patterns.is_empty() {
            return value;
        }
        match value {
            Value::String(s) => Value::String(self.text(&s)),
            Value::Number(n) => {
                let digits = n.to_string();
                let redacted = self.text(&digits);
                if redacted == digits { Value::Number(n) } else { Value::String(redacted) }
            }
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.json(v)).collect()),
            Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (self.text(&k), self.json(v))).collect()),
            other => other,
        }
    }

    /// The completion with its output, question and error message redacted.
    pub(crate) fn completion(&self, mut done: Completion) -> Completion {
        if self.patterns.is_empty() {
            return done;
        }
        done.output = done.output.map(|v| self.json(v));
        done.interrupt = done.interrupt.map(|v| self.json(v));
        if let Some(error) = &mut done.error {
            error.message = self.text(&error.message);
        }
        done
    }
}

fn marker(name: &str) -> String {
    format!("[redacted:{name}]")
}

#[cfg(test)]
mod tests {
    use agentd_core::Secret;
    use serde_json::json;

    use super::*;

    fn redactor(pairs: &[(&str, &str)]) -> Redactor {
        let mut secrets = RunSecrets::default();
        for (name, value) in pairs {
            secrets.insert(*name, Secret::new(*value));
        }
        Redactor::new(&secrets)
    }

    #[test]
    fn every_occurrence_becomes_the_marker_and_short_values_stay() {
        let r = redactor(&[("API_KEY", "sk-live-123"), ("PIN", "42")]);
        assert_eq!(r.text("key=sk-live-123, again sk-live-123."), "key=[redacted:API_KEY], again [redacted:API_KEY].");
        assert_eq!(r.text("the answer is 42"), "the answer is 42");
        assert_eq!(r.text("nothing here"), "nothing here");
        assert_eq!(Redactor::default().text("sk-live-123"), "sk-live-123");
    }

    #[test]
    fn overlapping_values_leave_no_part_of_either() {
        let r = redactor(&[("A", "abcdef"), ("B", "defxyz")]);
        assert_eq!(r.text("..abcdefxyz.."), "..[redacted:A].."); // one stretch, named by the first
        let r = redactor(&[("LONG", "hunter2hunter2"), ("SHORT", "hunter2")]);
        assert_eq!(r.text("hunter2hunter2 hunter2"), "[redacted:LONG] [redacted:SHORT]");
        let r = redactor(&[("REPEAT", "aaaa")]);
        assert_eq!(r.text("aaaaaa"), "[redacted:REPEAT]");
    }

    #[test]
    fn a_value_of_many_lines_is_also_found_line_by_line() {
        let r = redactor(&[("PEM", "-----BEGIN-----\nMIIBfirst\nMIIBsecond\n-----END-----")]);
        assert_eq!(r.text("MIIBsecond"), "[redacted:PEM]");
        assert_eq!(r.text("x -----BEGIN-----\nMIIBfirst\nMIIBsecond\n-----END----- y"), "x [redacted:PEM] y");
    }

    #[test]
    fn json_strings_keys_and_numbers_are_redacted() {
        let r = redactor(&[("TOKEN", "t0k3n-value"), ("PIN", "918273")]);
        let output =
            json!({"token": "t0k3n-value", "t0k3n-value": 1, "list": ["a t0k3n-value b", 918273, 5], "ok": true});
        assert_eq!(
            r.json(output),
            json!({"token": "[redacted:TOKEN]", "[redacted:TOKEN]": 1, "list": ["a [redacted:TOKEN] b", "[redacted:PIN]", 5], "ok": true})
        );
    }

    #[test]
    fn multibyte_text_around_a_value_survives() {
        let r = redactor(&[("K", "ключ-secret")]);
        assert_eq!(r.text("ééключ-secretéé"), "éé[redacted:K]éé");
    }
}
