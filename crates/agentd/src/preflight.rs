//! What `AGENTD_ENV=production` refuses besides open signup and a missing master key
//! (both in `Settings::production_problems`): plain HTTP on an address others reach
//! without a TLS proxy in front, and secrets anyone could guess. Each problem names the
//! setting and the fix. The sandbox's missing mechanisms are refused apart, in
//! `serve::check_sandbox`: they are known only once the worker's sandbox has probed the
//! host, after the settings were read (and `agentd worker` on another host checks its own).

use agentd_control::MasterKey;

use crate::settings::{ServerSettings, StoreSettings};

/// Secrets shorter than this are refused (a random one of the kind agentd asks for is far
/// longer: 32 bytes of base64 for the master key, 40 characters for an S3 secret key).
const MIN_SECRET_CHARS: usize = 16;

/// Passwords and keys that come with software or its docs, compared ignoring case.
const WELL_KNOWN_SECRETS: &[&str] = &[
    "password",
    "passw0rd",
    "postgres",
    "secret",
    "changeme",
    "change-me",
    "admin",
    "agentd",
    "root",
    "example",
    "test",
    "test-secret",
    "minioadmin",
    // AWS's documentation example secret access key.
    "wjalrxutnfemi/k7mdeng/bpxrficyexamplekey",
];

/// Plain HTTP reaches the network only behind a TLS proxy, and then clients are sent to
/// the proxy's `https://` URL.
pub fn transport_problem(api: &ServerSettings) -> Option<String> {
    let https_url = api.public_url.as_deref().is_some_and(|u| u.starts_with("https://"));
    if !api.behind_proxy && !api.listen.ip().is_loopback() {
        return Some(format!(
            "listening on {} over plain HTTP (agentd serves no TLS itself); put a TLS proxy in front and \
             set AGENTD_BEHIND_PROXY=true (--behind-proxy) with AGENTD_PUBLIC_URL=https://…, or listen on \
             127.0.0.1 (AGENTD_LISTEN)",
            api.listen
        ));
    }
    if api.behind_proxy && !https_url {
        return Some(
            "AGENTD_BEHIND_PROXY is set, so TLS ends at the proxy, but AGENTD_PUBLIC_URL is not an https:// URL; \
             set it to the proxy's https:// address"
                .to_owned(),
        );
    }
    None
}

/// Master keys and the secrets the operator supplies that anyone could guess.
pub fn secret_problems(api: &ServerSettings, store: Option<&StoreSettings>) -> Vec<String> {
    let mut problems = Vec::new();
    let keys = [("AGENTD_MASTER_KEY", &api.master_key), ("AGENTD_PREVIOUS_MASTER_KEY", &api.previous_master_key)];
    for (name, key) in keys {
        if key.as_ref().is_some_and(MasterKey::is_guessable) {
            problems.push(format!(
                "{name} is a guessable key (one byte repeated, a typed pattern or the example in the docs); \
                 make one with `openssl rand -base64 32`"
            ));
        }
    }
    let Some(store) = store else { return problems };
    if database_password(store.database.expose()).is_some_and(is_weak) {
        problems.push(format!(
            "the database password in AGENTD_DATABASE_URL is a default or shorter than {MIN_SECRET_CHARS} \
             characters; give the database user a long random password (`openssl rand -base64 24`)"
        ));
    }
    if store.s3.secret_access_key.as_deref().is_some_and(is_weak) {
        problems.push(format!(
            "AWS_SECRET_ACCESS_KEY is a default or shorter than {MIN_SECRET_CHARS} characters; use the bucket's \
             own generated key"
        ));
    }
    problems
}

fn is_weak(secret: &str) -> bool {
    secret.chars().count() < MIN_SECRET_CHARS || WELL_KNOWN_SECRETS.iter().any(|w| w.eq_ignore_ascii_case(secret))
}

/// The password of `scheme://user:password@host/…`, percent-decoding left aside (an encoded
/// password is only longer).
fn database_password(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?']).next()?;
    let (credentials, _) = authority.rsplit_once('@')?;
    let (_, password) = credentials.split_once(':')?;
    Some(password)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::ServeArgs;
    use clap::Parser;

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    const KEY: &str = "AwoRGB8mLTQ7QklQV15lbHN6gYiPlp2kq7K5wMfO1dw=";

    /// What production would refuse for `serve ARGS` with `vars` (a sound master key
    /// unless `vars` gives one, closed signup unless `args` says otherwise).
    fn refused(args: &[&str], vars: &[(&str, &str)]) -> Vec<String> {
        let mut argv = vec!["serve"];
        if !args.contains(&"--signup") {
            argv.extend(["--signup", "closed"]);
        }
        argv.extend_from_slice(args);
        let Ok(cli) = Serve::try_parse_from(argv) else { panic!("{args:?} parse") };
        let mut vars: Vec<(String, String)> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        if !vars.iter().any(|(k, _)| k == "AGENTD_MASTER_KEY") {
            vars.push(("AGENTD_MASTER_KEY".into(), KEY.into()));
        }
        // Development settings are not checked; ask what production would say of them.
        let settings = cli.args.settings(&vars).unwrap_or_else(|e| panic!("{e}"));
        settings.production_problems()
    }

    #[test]
    fn production_refuses_them_at_start_and_names_each() {
        let Ok(cli) = Serve::try_parse_from([
            "serve",
            "--env",
            "production",
            "--listen",
            "0.0.0.0:80",
            "--signups-per-hour-per-ip",
            "0",
        ]) else {
            panic!("parses")
        };
        let refused = cli.args.settings(&[]).err().map(|e| e.to_string()).unwrap_or_default();
        for named in ["AGENTD_SIGNUP", "AGENTD_BEHIND_PROXY", "AGENTD_MASTER_KEY"] {
            assert!(refused.contains(named), "{named}: {refused}");
        }
    }

    #[test]
    fn a_sound_setup_passes() {
        assert_eq!(refused(&[], &[]), Vec::<String>::new());
        let proxied = ["--listen", "0.0.0.0:8080", "--behind-proxy", "--public-url", "https://agents.example.com"];
        assert_eq!(refused(&proxied, &[]), Vec::<String>::new());
    }

    #[test]
    fn plain_http_beyond_loopback_needs_behind_proxy() {
        let problems = refused(&["--listen", "0.0.0.0:8080", "--public-url", "https://agents.example.com"], &[]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("0.0.0.0:8080 over plain HTTP") && problems[0].contains("AGENTD_BEHIND_PROXY"));
        let proxied = ["--listen", "0.0.0.0:8080", "--behind-proxy", "--public-url", "https://agents.example.com"];
        assert_eq!(refused(&proxied, &[]), Vec::<String>::new());
        assert_eq!(refused(&["--listen", "127.0.0.1:8080"], &[]), Vec::<String>::new(), "a proxy on this host");
    }

    #[test]
    fn behind_a_proxy_the_public_url_must_be_https() {
        for public in [&["--public-url", "http://agents.example.com"][..], &[]] {
            let mut args = vec!["--listen", "10.0.0.5:8080", "--behind-proxy"];
            args.extend_from_slice(public);
            let problems = refused(&args, &[]);
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(problems[0].contains("AGENTD_PUBLIC_URL is not an https:// URL"), "{problems:?}");
        }
    }

    #[test]
    fn guessable_master_keys_are_refused_by_name() {
        let zeros = "00".repeat(32);
        let problems = refused(&[], &[("AGENTD_MASTER_KEY", &zeros)]);
        assert!(problems.iter().any(|p| p.starts_with("AGENTD_MASTER_KEY is a guessable key")), "{problems:?}");
        let example = "ZXhhbXBsZS1tYXN0ZXIta2V5LWRvLW5vdC11c2UtMzI=";
        let problems = refused(&[], &[("AGENTD_MASTER_KEY", KEY), ("AGENTD_PREVIOUS_MASTER_KEY", example)]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("AGENTD_PREVIOUS_MASTER_KEY is a guessable key"), "{problems:?}");
    }

    #[test]
    fn weak_database_and_s3_secrets_are_refused_by_name() {
        let url = ["--database-url", "postgres://agentd:postgres@db.internal/agentd"];
        let problems = refused(&url, &[]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("database password in AGENTD_DATABASE_URL"), "{problems:?}");
        assert!(!problems[0].contains("postgres@"), "the password is never shown: {problems:?}");
        let strong = ["--database-url", "postgres://agentd:Zr8vQ2mL6xWp9TkN4hYc@db.internal/agentd"];
        assert_eq!(refused(&strong, &[]), Vec::<String>::new());
        let problems = refused(&[], &[("AWS_SECRET_ACCESS_KEY", "minioadmin")]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("AWS_SECRET_ACCESS_KEY is a default"), "{problems:?}");
    }

    #[test]
    fn every_problem_is_listed_at_once() {
        let args = [
            "--signup",
            "open",
            "--signups-per-hour-per-ip",
            "0",
            "--listen",
            "0.0.0.0:80",
            "--database-url",
            "postgres://u:pw@db/a",
        ];
        let problems = refused(&args, &[("AGENTD_MASTER_KEY", &"11".repeat(32)), ("AWS_SECRET_ACCESS_KEY", "x")]);
        assert_eq!(problems.len(), 5, "signup, HTTP, master key, database, S3: {problems:?}");
    }

    #[test]
    fn a_database_password_is_read_from_the_url() {
        assert_eq!(database_password("postgres://agentd:hunter2@db/agentd"), Some("hunter2"));
        assert_eq!(database_password("postgres://agentd@db/agentd"), None);
        assert_eq!(database_password("postgres://db/agentd?sslmode=require"), None);
        assert_eq!(database_password("sqlite:///srv/agentd.db"), None);
    }

    #[test]
    fn short_and_well_known_secrets_are_weak() {
        assert!(is_weak("hunter2"));
        assert!(is_weak("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"));
        assert!(is_weak("minioadmin"));
        assert!(!is_weak("q8LkR2vX9tWm4ZpN7cYb"));
    }
}
