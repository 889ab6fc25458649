//! The interpreter version a manifest asks for: `python = ">=3.11"`, `node = ">=20, <23"`.
//! A requirement is one or more comparisons joined by commas, each an operator (`>=`,
//! `>`, `<=`, `<`, `==`, `!=`) and a dotted numeric version; a bare version means `==`
//! and matches every release it prefixes (`3.11` matches `3.11.2`).

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A checked version requirement, kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VersionRequirement {
    text: String,
    comparisons: Vec<(Op, Vec<u64>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Ge,
    Gt,
    Le,
    Lt,
    Eq,
    Ne,
}

impl VersionRequirement {
    pub fn parse(text: &str) -> Result<VersionRequirement, String> {
        let invalid = || {
            format!(
                "`{text}` is not a version requirement; write e.g. \">=3.11\" or \">=20, <23\" (comparisons joined by commas)"
            )
        };
        let mut comparisons = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            let (op, rest) =
                [(">=", Op::Ge), ("<=", Op::Le), ("==", Op::Eq), ("!=", Op::Ne), (">", Op::Gt), ("<", Op::Lt)]
                    .into_iter()
                    .find_map(|(sign, op)| part.strip_prefix(sign).map(|rest| (op, rest)))
                    .unwrap_or((Op::Eq, part));
            let version = numbers(rest.trim()).ok_or_else(invalid)?;
            comparisons.push((op, version));
        }
        Ok(VersionRequirement { text: text.trim().to_owned(), comparisons })
    }

    /// Whether `version` (e.g. `3.11.2`, or `v20.1.0` as Node prints it) satisfies every
    /// comparison; a version that does not read as numbers satisfies none.
    pub fn matches(&self, version: &str) -> bool {
        let Some(have) = numbers(version.trim().trim_start_matches('v')) else { return false };
        self.comparisons.iter().all(|(op, want)| {
            // Compared on the requirement's own precision: `3.11` == `3.11.2`.
            let have = &have[..want.len().min(have.len())];
            let order = have.cmp(want.as_slice());
            match op {
                Op::Ge => order != Ordering::Less,
                Op::Gt => order == Ordering::Greater,
                Op::Le => order != Ordering::Greater,
                Op::Lt => order == Ordering::Less,
                Op::Eq => order == Ordering::Equal,
                Op::Ne => order != Ordering::Equal,
            }
        })
    }
}

/// `3.11.2` → `[3, 11, 2]`; `None` unless every part is a number (pre-releases such as
/// `3.13.0rc1` keep their numeric prefix only: `3.13.0`).
fn numbers(text: &str) -> Option<Vec<u64>> {
    let parts: Vec<u64> = text
        .split('.')
        .map(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect::<Option<_>>()?;
    (!parts.is_empty() && parts.len() <= 4).then_some(parts)
}

impl TryFrom<String> for VersionRequirement {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        VersionRequirement::parse(&text)
    }
}

impl From<VersionRequirement> for String {
    fn from(requirement: VersionRequirement) -> String {
        requirement.text
    }
}

impl fmt::Display for VersionRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str) -> VersionRequirement {
        VersionRequirement::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn comparisons_hold_on_the_requirements_precision() {
        assert!(req(">=3.11").matches("3.11.2"));
        assert!(req(">=3.11").matches("3.12.0"));
        assert!(!req(">=3.12").matches("3.11.2"));
        assert!(req("3.11").matches("3.11.7"));
        assert!(!req("==3.11").matches("3.12.1"));
        assert!(req(">=20, <23").matches("v20.20.2"));
        assert!(!req(">=20, <23").matches("v23.0.0"));
        assert!(req("!=3.10").matches("3.11.0"));
        assert!(!req(">3.11").matches("3.11.9"));
        assert!(req(">3.11").matches("3.12"));
    }

    #[test]
    fn nonsense_is_refused_with_an_example() {
        for bad in ["", ">=", "latest", ">=3.x", "~=3.11", ">=1.2.3.4.5"] {
            let err = VersionRequirement::parse(bad).err().unwrap_or_default();
            assert!(err.contains(">=3.11"), "{bad}: {err}");
        }
    }
}
