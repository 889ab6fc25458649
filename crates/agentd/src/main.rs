//! `agentd`: the one binary. `serve` runs the platform; the other commands are a
//! client of a running server. The sandbox re-executes this binary as its init, so
//! that case is dispatched before anything else starts.

mod admin;
mod admin_operators;
mod backup;
mod cli;
mod logging;
mod master_key;
mod preflight;
mod remote;
mod replica_lock;
mod serve;
mod settings;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "agentd", version, about = "Host AI agents: deploy, invoke, follow, all sandboxed")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the platform: API and an in-process worker.
    Serve(Box<settings::ServeArgs>),
    /// Run a worker that pulls runs from a server over HTTP.
    Worker(remote::WorkerArgs),
    /// Operator commands on the database (worker tokens, master key rotation).
    Admin(admin::AdminArgs),
    /// Apply the database's pending migrations and stop (for `serve --no-migrate`).
    Migrate(backup::StoreArgs),
    /// Write a consistent copy of the SQLite database and the blobs to FILE, while the
    /// server runs (PostgreSQL: use pg_dump).
    Backup(backup::BackupArgs),
    /// Unpack a backup into a new, empty data dir.
    Restore(backup::RestoreArgs),
    /// Measure spawn overhead, end-to-end and queue throughput, each against a baseline.
    Bench(agentd_bench::BenchArgs),
    /// Print a shell completion script for bash, zsh or fish.
    ///
    /// `agentd completions bash > /etc/bash_completion.d/agentd`, `agentd completions zsh >
    /// "${fpath[1]}/_agentd"`, `agentd completions fish > ~/.config/fish/completions/agentd.fish`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    #[command(flatten)]
    Client(cli::ClientCommand),
}

fn main() -> ExitCode {
    // Must run before any thread exists: the sandbox init is single-threaded by design.
    if std::env::args_os().nth(1).is_some_and(|a| a == agentd_sandbox::INIT_ARG) {
        agentd_sandbox::init_main();
    }
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        end_quietly_on_a_closed_pipe();
        clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "agentd", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Worker(args) => remote::run(args).await,
            Command::Admin(args) => admin::run(args).await,
            Command::Migrate(args) => backup::migrate(args).await,
            Command::Backup(args) => backup::backup(args).await,
            Command::Restore(args) => backup::restore(args).await,
            Command::Bench(args) => agentd_bench::run(args).await,
            Command::Completions { .. } => ExitCode::SUCCESS,
            Command::Client(command) => {
                end_quietly_on_a_closed_pipe();
                cli::run(command).await
            }
        }
    })
}

/// A command writing into a closed pipe (`agentd agents list | head -1`) ends quietly, as
/// other command-line tools do, instead of panicking on the write. Only for commands that
/// print: the server and the worker must survive a peer that hung up.
fn end_quietly_on_a_closed_pipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: restoring a signal's default disposition installs no handler.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}
