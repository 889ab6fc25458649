//! `agentd init`: what it writes deploys and runs as it is, for every runtime it offers,
//! and it refuses, writing nothing, where it would overwrite an agent or does not know
//! the runtime.

use std::path::Path;

use agentd_test_support::Backend;
use serde_json::json;

use crate::cli::{Shell, json};
use crate::harness::TestApp;

/// A server that `init` is never meant to reach.
const NO_SERVER: &str = "http://127.0.0.1:9";

#[tokio::test]
async fn an_agent_written_by_init_deploys_and_succeeds_for_each_runtime() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let shell = Shell::new(&app.base_url);
    shell.signup().await;
    let parent = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));

    for (runtime, folder, slug) in
        [("python", "Python Agent", "python-agent"), ("node", "node_agent", "node-agent"), ("shell", "sh", "sh")]
    {
        // The folder does not exist yet: init creates it.
        let dir = parent.path().join("agents").join(folder);
        let dir = dir.to_string_lossy().into_owned();
        let initialized = shell.ok(&["init", &dir, "--runtime", runtime]).await;
        assert!(initialized.stdout.contains(&format!("agentd invoke {slug} ")), "{initialized:#?}");
        assert!(initialized.stdout.contains("agentd agents deploy "), "{initialized:#?}");

        let deployed = shell.ok(&["agents", "deploy", &dir]).await;
        assert!(deployed.stdout.contains(&format!("{slug} version 1")), "{deployed:#?}");
        let invoked = shell.ok(&["invoke", slug, "--input", r#"{"name":"ada"}"#, "--wait", "--json"]).await;
        let invocation = json(&invoked.stdout);
        assert_eq!(invocation["status"], "succeeded", "{runtime}: {invoked:#?}");
        assert_eq!(invocation["output"], json!({"greeting": "hello, ada"}), "{runtime}");

        let defaulted = shell.ok(&["invoke", slug, "--wait", "--json"]).await;
        assert_eq!(json(&defaulted.stdout)["output"], json!({"greeting": "hello, world"}), "{runtime}");
    }
}

#[tokio::test]
async fn init_refuses_a_folder_that_already_has_an_agent_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let manifest = dir.path().join("agent.toml");
    std::fs::write(&manifest, "name = \"mine\"\n").unwrap_or_else(|e| panic!("write agent.toml: {e}"));
    let before = listing(dir.path());

    let path = dir.path().to_string_lossy().into_owned();
    let run = Shell::new(NO_SERVER).run(&["init", &path, "--runtime", "python"]).await;
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("agent.toml already exists"), "{run:#?}");
    assert_eq!(listing(dir.path()), before, "nothing may be written");
    let kept = std::fs::read_to_string(&manifest).unwrap_or_default();
    assert_eq!(kept, "name = \"mine\"\n");
}

#[tokio::test]
async fn init_refuses_to_overwrite_an_entrypoint() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    std::fs::write(dir.path().join("main.mjs"), "// mine\n").unwrap_or_else(|e| panic!("write main.mjs: {e}"));

    let path = dir.path().to_string_lossy().into_owned();
    let run = Shell::new(NO_SERVER).run(&["init", &path, "--runtime", "node"]).await;
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("main.mjs already exists"), "{run:#?}");
    assert_eq!(listing(dir.path()), vec!["main.mjs".to_owned()], "nothing may be written");
}

#[tokio::test]
async fn init_refuses_an_unknown_runtime_and_creates_no_folder() {
    let parent = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    let dir = parent.path().join("rubyist");

    let path = dir.to_string_lossy().into_owned();
    let run = Shell::new(NO_SERVER).run(&["init", &path, "--runtime", "ruby"]).await;
    assert_eq!(run.code, Some(2), "{run:#?}");
    assert!(run.stderr.contains("ruby") && run.stderr.contains("python, node, shell"), "{run:#?}");
    assert!(!dir.exists(), "the folder must not be created");
}

fn listing(dir: &Path) -> Vec<String> {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("list {}: {e}", dir.display()));
    let mut names: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}
