//! `agentd signup`, `agentd login` and `agentd whoami`: getting credentials, storing
//! them, and checking whose they are.

use agentd_api_types::{Actor, LoginRequest, SignupRequest};
use clap::Args;

use super::output::{Failure, print_json};
use super::session::Connection;
use super::slug::slugify;

#[derive(Debug, Args)]
pub struct SignupArgs {
    #[command(flatten)]
    conn: Connection,
    /// Email of the workspace's owner
    #[arg(long, env = "AGENTD_EMAIL")]
    email: String,
    /// Password of the workspace's owner [default: asked for on the terminal, or one line of stdin]
    #[arg(long, env = "AGENTD_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Display name of the new workspace
    #[arg(long)]
    workspace_name: String,
    /// URL name of the new workspace [default: derived from --workspace-name]
    #[arg(long)]
    workspace_slug: Option<String>,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[command(flatten)]
    conn: Connection,
    #[arg(long, env = "AGENTD_EMAIL")]
    email: String,
    /// [default: asked for on the terminal, or one line of stdin]
    #[arg(long, env = "AGENTD_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Workspace to sign in to, when the user belongs to several
    #[arg(long)]
    workspace_slug: Option<String>,
}

#[derive(Debug, Args)]
pub struct WhoamiArgs {
    #[command(flatten)]
    conn: Connection,
}

pub async fn signup(args: SignupArgs) -> Result<(), Failure> {
    let session = args.conn.anonymous()?;
    let workspace_slug = match args.workspace_slug {
        Some(slug) => slug,
        None => slugify(&args.workspace_name).ok_or_else(|| {
            Failure::Usage(format!(
                "cannot derive a workspace slug from `{}`; pass --workspace-slug",
                args.workspace_name
            ))
        })?,
    };
    let request = SignupRequest {
        email: args.email,
        password: password(args.password)?,
        workspace_name: args.workspace_name,
        workspace_slug,
    };
    let response = session.client.signup(&request).await?;
    let (stored, profile) = args.conn.save(&session.server, response.api_key.secret.clone())?;
    if session.json {
        return print_json(&response);
    }
    println!("Created workspace {} ({}) owned by {}.", response.tenant.slug, response.tenant.id, response.user.email);
    println!(
        "API key {} ({}) saved to {} as profile {profile}; `--json` shows its secret once.",
        response.api_key.key.prefix,
        response.api_key.key.id,
        stored.display()
    );
    Ok(())
}

pub async fn login(args: LoginArgs) -> Result<(), Failure> {
    let session = args.conn.anonymous()?;
    let password = password(args.password)?;
    let request = LoginRequest { email: args.email, password, workspace_slug: args.workspace_slug };
    let response = session.client.login(&request).await?;
    let (stored, profile) = args.conn.save(&session.server, response.token.clone())?;
    if session.json {
        return print_json(&response);
    }
    println!(
        "Signed in to {} as {}; the session expires at {}.",
        response.tenant.slug, response.user.email, response.expires_at
    );
    println!("Session token saved to {} as profile {profile}.", stored.display());
    Ok(())
}

pub async fn whoami(args: WhoamiArgs) -> Result<(), Failure> {
    let session = args.conn.authenticated()?;
    let me = session.client.me().await?;
    if session.json {
        return print_json(&me);
    }
    let actor = match (&me.actor, &me.user) {
        (Actor::User { id }, Some(user)) => format!("user {} ({id})", user.email),
        (Actor::User { id }, None) => format!("user {id}"),
        (Actor::ApiKey { id }, _) => format!("API key {id}"),
        (Actor::Run { id }, _) => format!("the run of invocation {id}"),
        (Actor::Schedule { id }, _) => format!("schedule {id}"),
        (Actor::Trigger { id }, _) => format!("trigger {id}"),
    };
    let scopes: Vec<&str> = me.scopes.iter().map(|s| s.as_str()).collect();
    println!("server:    {}", session.server);
    if let Some(profile) = &session.profile {
        println!("profile:   {profile}");
    }
    println!("workspace: {} ({})", me.tenant.slug, me.tenant.id);
    println!("as:        {actor}");
    if let Some(role) = me.role {
        println!("role:      {}", role.as_str());
    }
    println!("scopes:    {}", scopes.join(" "));
    Ok(())
}

/// The password given, else one read from the terminal with echo off, else the first
/// line of stdin (`agentd login --email … < password.txt`).
fn password(given: Option<String>) -> Result<String, Failure> {
    use std::io::{BufRead, IsTerminal, Write};
    if let Some(password) = given {
        return Ok(password);
    }
    let stdin = std::io::stdin();
    let mut line = String::new();
    let read = if stdin.is_terminal() {
        // Echo goes off before the prompt shows, so nothing typed after it is echoed.
        let read = without_echo(|| {
            eprint!("Password: ");
            let _ = std::io::stderr().flush();
            stdin.lock().read_line(&mut line)
        });
        eprintln!();
        read
    } else {
        stdin.lock().read_line(&mut line)
    };
    read.map_err(|e| Failure::local(format!("cannot read the password: {e}")))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err(Failure::Usage("no password: pass --password, set AGENTD_PASSWORD or type it when asked".into()));
    }
    Ok(password)
}

/// Runs `read` with the terminal's echo off, and puts the echo back whatever happens.
fn without_echo<T>(read: impl FnOnce() -> std::io::Result<T>) -> std::io::Result<T> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    let saved = tcgetattr(stdin.as_fd()).map_err(std::io::Error::from)?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &quiet).map_err(std::io::Error::from)?;
    let result = read();
    let restored = tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &saved).map_err(std::io::Error::from);
    result.and_then(|value| restored.map(|()| value))
}
