//! What an agent's configuration may put into a run's environment: the rule for names and
//! values that the manifest's `[env]` and `overridable_env`, the agent's `config.env` and
//! an invoke's `env` all obey, so the three can never disagree.
//!
//! The platform sets some variables itself (`PATH`, `HOME`, `AGENTD_*`, …) and others
//! change how the sandbox's programs load code, find certificates or reach the network
//! (`LD_PRELOAD`, `PYTHONPATH`, `HTTPS_PROXY`, …). Those are refused outright rather than
//! overridden at run time: a refusal says at once what is wrong, an override would be a
//! silent surprise.

use std::collections::BTreeMap;

/// Most variables one source (manifest, agent or invoke) may set.
pub const MAX_ENV_VARS: usize = 100;
/// Longest variable name, in characters.
pub const MAX_ENV_NAME_CHARS: usize = 128;
/// Longest value, in bytes.
pub const MAX_ENV_VALUE_BYTES: usize = 32 * 1024;

/// Names set by the platform or that change the sandbox, matched exactly.
const RESERVED_NAMES: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "PWD",
    "TMPDIR",
    "LANG",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "IFS",
    "BASH_ENV",
    "ENV",
    // glibc reads these to load code or rewrite name resolution.
    "GLIBC_TUNABLES",
    "GCONV_PATH",
    "LOCPATH",
    "HOSTALIASES",
];

/// Prefixes of reserved names, matched exactly (the loaders read only these spellings).
const RESERVED_PREFIXES: &[&str] = &["LC_", "PYTHON", "NODE_", "LD_", "DYLD_", "AGENTD_"];

/// Reserved in any case: curl, pip and npm also read the lowercase spellings.
const RESERVED_ANY_CASE: &[&str] = &["HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"];
const RESERVED_PREFIXES_ANY_CASE: &[&str] = &["NPM_CONFIG_"];

/// Why a variable was refused. Each message names the variable and says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvRefusal {
    #[error(
        "`{name}` is not a variable name: use letters, digits and `_`, not starting with a digit, \
         at most {MAX_ENV_NAME_CHARS} characters"
    )]
    Malformed { name: String },
    #[error(
        "`{name}` is set by the platform or changes the sandbox (PATH, HOME, LANG, LC_*, TMPDIR, \
         PYTHON*, NODE_*, NPM_CONFIG_*, LD_*, AGENTD_*, proxy and CA-certificate variables, …); \
         choose another name"
    )]
    Reserved { name: String },
    #[error("the value of `{name}` is longer than {MAX_ENV_VALUE_BYTES} bytes")]
    ValueTooLong { name: String },
    #[error("the value of `{name}` contains a control character (only tab and line breaks are allowed)")]
    ValueControlCharacter { name: String },
    #[error("{count} variables given; at most {MAX_ENV_VARS} are allowed")]
    TooMany { count: usize },
}

/// Checks one variable name: well-formed and not one the platform keeps for itself.
pub fn check_env_name(name: &str) -> Result<(), EnvRefusal> {
    let mut chars = name.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= MAX_ENV_NAME_CHARS;
    if !well_formed {
        return Err(EnvRefusal::Malformed { name: shorten(name) });
    }
    let upper = name.to_ascii_uppercase();
    let reserved = RESERVED_NAMES.contains(&name)
        || RESERVED_PREFIXES.iter().any(|prefix| name.starts_with(prefix))
        || RESERVED_ANY_CASE.contains(&upper.as_str())
        || RESERVED_PREFIXES_ANY_CASE.iter().any(|prefix| upper.starts_with(prefix));
    if reserved {
        return Err(EnvRefusal::Reserved { name: name.to_owned() });
    }
    Ok(())
}

/// Checks a whole set of variables: their number, every name and every value. Values may
/// hold tabs and line breaks (certificates, JSON); other control characters would forge
/// log lines, and NUL cannot be passed to a program at all.
pub fn check_env(vars: &BTreeMap<String, String>) -> Result<(), EnvRefusal> {
    if vars.len() > MAX_ENV_VARS {
        return Err(EnvRefusal::TooMany { count: vars.len() });
    }
    for (name, value) in vars {
        check_env_name(name)?;
        if value.len() > MAX_ENV_VALUE_BYTES {
            return Err(EnvRefusal::ValueTooLong { name: name.clone() });
        }
        if value.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) {
            return Err(EnvRefusal::ValueControlCharacter { name: name.clone() });
        }
    }
    Ok(())
}

/// A malformed name may be anything a stranger sent: keep the message short and printable.
fn shorten(name: &str) -> String {
    let printable: String = name.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).take(64).collect();
    if name.chars().count() > 64 { format!("{printable}…") } else { printable }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn ordinary_names_pass() {
        for name in ["MODEL", "_private", "OPENAI_BASE_URL", "TZ", "a1", "PATHS_FILE", "LANGUAGE_MODEL"] {
            assert_eq!(check_env_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn malformed_names_are_refused() {
        let long = "A".repeat(MAX_ENV_NAME_CHARS + 1);
        for name in ["", "1ABC", "A-B", "A B", "A=B", "É", "A\u{0}", long.as_str()] {
            assert!(matches!(check_env_name(name), Err(EnvRefusal::Malformed { .. })), "{name:?}");
        }
    }

    #[test]
    fn names_the_platform_keeps_are_refused() {
        for name in [
            "PATH",
            "HOME",
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "PYTHONPATH",
            "PYTHONSTARTUP",
            "NODE_OPTIONS",
            "AGENTD_TOKEN",
            "AGENTD_API_URL",
            "LC_ALL",
            "https_proxy",
            "Http_Proxy",
            "npm_config_registry",
            "SSL_CERT_FILE",
            "BASH_ENV",
            "GLIBC_TUNABLES",
        ] {
            assert!(matches!(check_env_name(name), Err(EnvRefusal::Reserved { .. })), "{name}");
        }
        // Case matters where the loaders are case-sensitive: `path` is not `PATH`.
        assert_eq!(check_env_name("path"), Ok(()));
    }

    #[test]
    fn values_and_counts_have_bounds() {
        assert_eq!(check_env(&vars(&[("PEM", "-----BEGIN-----\nabc\n-----END-----\r\n\t")])), Ok(()));
        assert!(matches!(check_env(&vars(&[("A", "x\u{0}y")])), Err(EnvRefusal::ValueControlCharacter { .. })));
        assert!(matches!(check_env(&vars(&[("A", "\u{1b}[31m")])), Err(EnvRefusal::ValueControlCharacter { .. })));
        let big = "x".repeat(MAX_ENV_VALUE_BYTES + 1);
        assert!(matches!(check_env(&vars(&[("A", big.as_str())])), Err(EnvRefusal::ValueTooLong { .. })));
        let many: BTreeMap<String, String> = (0..=MAX_ENV_VARS).map(|i| (format!("V{i}"), String::new())).collect();
        assert_eq!(check_env(&many), Err(EnvRefusal::TooMany { count: MAX_ENV_VARS + 1 }));
        assert!(matches!(check_env(&vars(&[("OK", "1"), ("LD_AUDIT", "x")])), Err(EnvRefusal::Reserved { .. })));
    }
}
