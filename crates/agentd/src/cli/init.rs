//! `agentd init DIR --runtime python|node|shell`: writes a new agent folder that deploys
//! and runs as it is: `agent.toml`, an entrypoint (with the SDK, or the run protocol by
//! hand for shell) and a short `README.md`. Local only; it talks to no server.
//!
//! Everything is checked before anything is written: an existing `agent.toml` or
//! entrypoint is never overwritten, and the manifest is parsed with the server's own
//! rules, so a scaffold that would not deploy is refused here rather than at upload.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use agentd_bundle::Manifest;
use clap::{Args, ValueEnum};
use serde::Serialize;

use super::output::{Failure, print_json};
use super::slug::slugify;

const MANIFEST_TEMPLATE: &str = include_str!("init/agent.toml.in");
const README_TEMPLATE: &str = include_str!("init/README.md.in");
const PYTHON_ENTRYPOINT: &str = include_str!("init/main.py");
const NODE_ENTRYPOINT: &str = include_str!("init/main.mjs");
const SHELL_ENTRYPOINT: &str = include_str!("init/run.sh");

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder to write the agent into; created when missing
    dir: PathBuf,
    /// Language of the entrypoint
    #[arg(long, value_enum)]
    runtime: Template,
    /// Agent name, slugified [default: the folder's name]
    #[arg(long)]
    name: Option<String>,
    /// Print what was written as JSON
    #[arg(long)]
    json: bool,
}

/// The runtimes `init` has a starting point for (`binary` has none: it is built elsewhere).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Template {
    Python,
    Node,
    Shell,
}

impl Template {
    fn runtime(self) -> &'static str {
        match self {
            Template::Python => "python",
            Template::Node => "node",
            Template::Shell => "shell",
        }
    }

    fn entrypoint(self) -> (&'static str, &'static str) {
        match self {
            Template::Python => ("main.py", PYTHON_ENTRYPOINT),
            Template::Node => ("main.mjs", NODE_ENTRYPOINT),
            Template::Shell => ("run.sh", SHELL_ENTRYPOINT),
        }
    }

    /// How to run the entrypoint on this machine, as the README shows it.
    fn local_run(self) -> &'static str {
        match self {
            Template::Python => {
                "echo '{\"input\": {\"name\": \"ada\"}}' | PYTHONPATH=path/to/agentd/sdk/python python3 main.py 3>&1"
            }
            // The SDK link must stay out of this folder: a link leaving it cannot be deployed.
            Template::Node => {
                "mkdir -p /tmp/agentd-node/node_modules && cp main.mjs /tmp/agentd-node/\n\
                 ln -sfn \"$PWD/path/to/agentd/sdk/node/agentd\" /tmp/agentd-node/node_modules/agentd\n\
                 echo '{\"input\": {\"name\": \"ada\"}}' | node /tmp/agentd-node/main.mjs 3>&1"
            }
            Template::Shell => "echo '{\"input\": {\"name\": \"ada\"}}' | sh run.sh 3>&1",
        }
    }
}

/// One file of the scaffold.
struct File {
    name: &'static str,
    content: String,
    executable: bool,
}

/// What `init` wrote, for `--json`.
#[derive(Serialize)]
struct Initialized {
    dir: PathBuf,
    name: String,
    runtime: &'static str,
    written: Vec<&'static str>,
    /// Files that were already there and were left alone.
    kept: Vec<&'static str>,
}

pub fn run(args: InitArgs) -> Result<(), Failure> {
    let name = agent_name(&args)?;
    let files = scaffold(args.runtime, &name)?;
    let (written, kept) = write_new(&args.dir, &files)?;
    let initialized = Initialized { dir: args.dir, name, runtime: args.runtime.runtime(), written, kept };
    if args.json {
        return print_json(&initialized);
    }
    print_next_steps(&initialized);
    Ok(())
}

/// `--name`, or the folder's own name, as a slug: the manifest name and the agent's slug
/// at deploy are then the same.
fn agent_name(args: &InitArgs) -> Result<String, Failure> {
    let (source, what) = match &args.name {
        Some(name) => (Some(name.clone()), "--name"),
        None => (folder_name(&args.dir), "the folder's name"),
    };
    source.as_deref().and_then(slugify).ok_or_else(|| {
        let given = source.unwrap_or_default();
        Failure::Usage(format!(
            "cannot make an agent name from {what} `{given}`: it needs a letter or a digit; pass --name"
        ))
    })
}

/// The last named component of `dir` (`.` and `..` resolved against the current folder).
fn folder_name(dir: &Path) -> Option<String> {
    let absolute = std::fs::canonicalize(dir).or_else(|_| std::path::absolute(dir)).ok()?;
    let mut parts = Vec::new();
    for component in absolute.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    parts.last().map(|part| part.to_string_lossy().into_owned())
}

/// The three files, filled in, with the manifest checked as the server would check it.
fn scaffold(template: Template, name: &str) -> Result<Vec<File>, Failure> {
    let (entrypoint, code) = template.entrypoint();
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{runtime}}", template.runtime())
            .replace("{{entrypoint}}", entrypoint)
            .replace("{{local_run}}", template.local_run())
    };
    let manifest = fill(MANIFEST_TEMPLATE);
    Manifest::from_toml(&manifest)
        .map_err(|e| Failure::local(format!("the agent.toml init would write is not valid ({e})")))?;
    Ok(vec![
        File { name: "agent.toml", content: manifest, executable: false },
        File { name: entrypoint, content: fill(code), executable: template == Template::Shell },
        File { name: "README.md", content: fill(README_TEMPLATE), executable: false },
    ])
}

/// Creates `dir` if needed and writes `files`, refusing before anything is written when
/// the manifest or the entrypoint exists; an existing README is kept. Returns the names
/// written and kept.
fn write_new(dir: &Path, files: &[File]) -> Result<(Vec<&'static str>, Vec<&'static str>), Failure> {
    if dir.exists() && !dir.is_dir() {
        return Err(Failure::Usage(format!("{} exists and is not a folder", dir.display())));
    }
    let mut kept = Vec::new();
    for file in files {
        if dir.join(file.name).symlink_metadata().is_ok() {
            if file.name == "README.md" {
                kept.push(file.name);
                continue;
            }
            return Err(Failure::Usage(format!(
                "{} already exists; init writes a new agent and overwrites nothing",
                dir.join(file.name).display()
            )));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| Failure::local(format!("cannot create {}: {e}", dir.display())))?;
    let mut written = Vec::new();
    for file in files.iter().filter(|file| !kept.contains(&file.name)) {
        if let Err(failure) = write_file(dir, file) {
            // All or nothing: a half-written scaffold would be refused by the next `init`.
            for name in &written {
                if let Err(e) = std::fs::remove_file(dir.join(name)) {
                    eprintln!("warning: could not remove {}: {e}", dir.join(name).display());
                }
            }
            return Err(failure);
        }
        written.push(file.name);
    }
    Ok((written, kept))
}

fn write_file(dir: &Path, file: &File) -> Result<(), Failure> {
    let path = dir.join(file.name);
    let mode = if file.executable { 0o755 } else { 0o644 };
    // `create_new`: a file that appeared since the check is not overwritten either.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&path)
        .and_then(|mut handle| handle.write_all(file.content.as_bytes()))
        .map_err(|e| Failure::local(format!("cannot write {}: {e}", path.display())))
}

fn print_next_steps(initialized: &Initialized) {
    let dir = initialized.dir.display().to_string();
    println!("Created agent {} ({}) in {dir}:", initialized.name, initialized.runtime);
    for name in &initialized.written {
        println!("  {name}");
    }
    for name in &initialized.kept {
        println!("  {name} (already there, kept)");
    }
    println!();
    println!("Next:");
    println!("  agentd agents deploy {}", shell_quoted(&dir));
    println!("  agentd invoke {} --input '{{\"name\": \"ada\"}}' --wait", initialized.name);
}

/// `text` as one shell word, so that the printed commands can be pasted as they are.
fn shell_quoted(text: &str) -> String {
    let plain = !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c));
    match plain {
        true => text.to_owned(),
        false => format!("'{}'", text.replace('\'', r"'\''")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_paths_are_quoted_only_when_the_shell_needs_it() {
        assert_eq!(shell_quoted("agents/my-agent"), "agents/my-agent");
        assert_eq!(shell_quoted("My Agent"), "'My Agent'");
        assert_eq!(shell_quoted("it's"), r"'it'\''s'");
    }

    #[test]
    fn every_template_gives_a_manifest_the_server_accepts() {
        for template in [Template::Python, Template::Node, Template::Shell] {
            let files = scaffold(template, "my-agent").unwrap_or_else(|e| panic!("{template:?}: {e}"));
            let manifest = Manifest::from_toml(&files[0].content).unwrap_or_else(|e| panic!("{template:?}: {e}"));
            assert_eq!(manifest.entrypoint, files[1].name);
            assert!(files.iter().all(|file| !file.content.contains("{{")), "{template:?} left a placeholder");
        }
    }

    #[test]
    fn the_name_comes_from_the_folder_when_not_given() {
        assert_eq!(folder_name(Path::new("/tmp/Some Agent")).as_deref(), Some("Some Agent"));
        assert_eq!(folder_name(Path::new("/tmp/a/b/..")).as_deref(), Some("a"));
    }
}
