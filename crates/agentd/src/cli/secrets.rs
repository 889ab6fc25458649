//! `agentd agents secrets set | list | delete`: an agent's secrets from the command line.
//! A value comes from `--value` or, better (it stays out of the shell's history and the
//! process list), from stdin; it is never printed.

use std::io::{IsTerminal, Read};

use agentd_api_types::AgentSecret;
use clap::{Args, Subcommand};

use super::output::{Failure, print_json, print_table};
use super::session::Session;

#[derive(Debug, Args)]
pub struct SecretsArgs {
    #[command(subcommand)]
    command: SecretsCommand,
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Set a secret (create it or replace its value); the value is read from stdin
    /// unless --value is given. One trailing line break of stdin is dropped.
    Set {
        slug: String,
        /// The environment variable the agent's runs get it as
        name: String,
        /// The value; prefer stdin, which keeps it out of the shell's history
        #[arg(long)]
        value: Option<String>,
    },
    /// List the names of an agent's secrets and when they were set (never the values)
    List { slug: String },
    /// Delete a secret
    Delete { slug: String, name: String },
}

pub async fn run(session: &Session, args: SecretsArgs) -> Result<(), Failure> {
    match args.command {
        SecretsCommand::Set { slug, name, value } => set(session, &slug, &name, value).await,
        SecretsCommand::List { slug } => list(session, &slug).await,
        SecretsCommand::Delete { slug, name } => {
            session.client.secret_delete(&slug, &name).await?;
            if !session.json {
                println!("Deleted secret {name} of {slug}.");
            }
            Ok(())
        }
    }
}

async fn set(session: &Session, slug: &str, name: &str, value: Option<String>) -> Result<(), Failure> {
    let value = match value {
        Some(value) => value,
        None => tokio::task::spawn_blocking(read_stdin)
            .await
            .map_err(|e| Failure::local(format!("reading stdin stopped: {e}")))??,
    };
    let (secret, created) = session.client.secret_set(slug, name, &value).await?;
    if session.json {
        return print_json(&secret);
    }
    let done = if created { "Created" } else { "Updated" };
    println!("{done} secret {} of {slug}; its runs get it as ${}.", secret.name, secret.name);
    Ok(())
}

/// The value on stdin, without the line break `echo` or a file's last line adds.
fn read_stdin() -> Result<String, Failure> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("Type the value, then Enter and Ctrl-D:");
    }
    let mut value = String::new();
    stdin.read_to_string(&mut value).map_err(|e| Failure::local(format!("cannot read the value from stdin: {e}")))?;
    if value.ends_with('\n') {
        value.pop();
        if value.ends_with('\r') {
            value.pop();
        }
    }
    Ok(value)
}

async fn list(session: &Session, slug: &str) -> Result<(), Failure> {
    let secrets = session.client.secrets_list(slug).await?;
    if session.json {
        return print_json(&secrets);
    }
    let rows: Vec<Vec<String>> = secrets.data.iter().map(secret_row).collect();
    print_table(&["NAME", "CREATED", "UPDATED"], &rows);
    Ok(())
}

fn secret_row(secret: &AgentSecret) -> Vec<String> {
    vec![secret.name.clone(), secret.created_at.to_string(), secret.updated_at.to_string()]
}
