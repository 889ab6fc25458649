//! The client SDKs for applications (`sdk/python-client`, `sdk/node/client`): their unit
//! tests (a local fake server, no agentd), their live tests against a real `agentd serve`
//! with a signed-up workspace's key in `AGENTD_API_URL`/`AGENTD_API_KEY`, and the Python
//! package installing with pip, all with the system interpreters.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use agentd_test_support::{Backend, on_both_stores};

use crate::harness::TestApp;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The Python client's tests matching `pattern`, with `env` (and never a server of the
/// caller's environment unless `env` names one).
fn python_tests(pattern: &str, env: &[(&str, &str)]) -> Output {
    Command::new("/usr/bin/python3")
        .args(["-m", "unittest", "discover", "-v", "-s", "sdk/python-client/tests", "-t", "sdk/python-client", "-p"])
        .arg(pattern)
        .env_remove("AGENTD_API_URL")
        .env_remove("AGENTD_API_KEY")
        .envs(env.iter().copied())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(repo())
        .output()
        .expect("run /usr/bin/python3")
}

fn node_tests(file: &str, env: &[(&str, &str)]) -> Output {
    Command::new("/usr/bin/node")
        .args(["--test", &format!("sdk/node/client/test/{file}")])
        .env_remove("AGENTD_API_URL")
        .env_remove("AGENTD_API_KEY")
        .envs(env.iter().copied())
        .current_dir(repo())
        .output()
        .expect("run /usr/bin/node")
}

/// A passing unittest run that skipped nothing.
fn assert_python_ran(out: &Output) {
    let all = text(out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("\nOK") && !all.contains("skipped"), "the Python tests were skipped:\n{all}");
}

/// A passing `node --test` run that skipped nothing.
fn assert_node_ran(out: &Output) {
    let all = text(out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("# fail 0") && all.contains("# skipped 0"), "the Node tests were skipped:\n{all}");
}

#[test]
fn the_python_client_unit_tests_pass() {
    assert_python_ran(&python_tests("test_unit.py", &[]));
}

#[test]
fn the_node_client_unit_tests_pass() {
    assert_node_ran(&node_tests("unit.test.mjs", &[]));
}

on_both_stores!(the_client_sdks_pass_their_live_tests_against_a_real_server);
async fn the_client_sdks_pass_their_live_tests_against_a_real_server(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A workspace per language, so that neither sees the other's agents and keys.
    let python = app.signup("python-sdk").await;
    let node = app.signup("node-sdk").await;
    let url = app.base_url.clone();
    let (python_key, node_key) = (python.key.clone(), node.key.clone());
    let (python_out, node_out) = tokio::task::spawn_blocking(move || {
        let python = python_tests("test_live.py", &[("AGENTD_API_URL", &url), ("AGENTD_API_KEY", &python_key)]);
        let node = node_tests("live.test.mjs", &[("AGENTD_API_URL", &url), ("AGENTD_API_KEY", &node_key)]);
        (python, node)
    })
    .await
    .unwrap();
    assert_python_ran(&python_out);
    assert_node_ran(&node_out);

    // What the scripts did is on the server, in each workspace.
    let runs = python.client.invocations_list(&agentd_client::InvocationFilter::default()).await.unwrap();
    assert!(runs.data.iter().any(|i| i.agent.as_str() == "python-ask"), "{:?}", runs.data);
    let runs = node.client.invocations_list(&agentd_client::InvocationFilter::default()).await.unwrap();
    assert!(runs.data.iter().any(|i| i.agent.as_str() == "js-ask"), "{:?}", runs.data);
}

/// `pip install ./sdk/python-client` works offline (with the system's setuptools, so
/// `--no-build-isolation`), and the installed module is importable from anywhere. The
/// package is copied first: setuptools builds in the source tree.
#[test]
fn the_python_client_installs_with_pip() {
    let tmp = tempfile::tempdir().unwrap();
    // The venv has pip and setuptools from ensurepip (Python 3.11), or sees the system's.
    let venv = tmp.path().join("venv");
    let made =
        Command::new("/usr/bin/python3").args(["-m", "venv", "--system-site-packages"]).arg(&venv).output().unwrap();
    let python = venv.join("bin/python");
    let probe = match made.status.success() {
        true => Command::new(&python).args(["-c", "import setuptools, pip"]).output().unwrap(),
        false => made,
    };
    if !probe.status.success() {
        assert!(std::env::var_os("CI").is_none(), "python3-venv with pip and setuptools is needed: {}", text(&probe));
        eprintln!("skipped: no venv with pip and setuptools: {}", text(&probe));
        return;
    }
    let source = tmp.path().join("python-client");
    std::fs::create_dir(&source).unwrap();
    for file in ["pyproject.toml", "README.md"] {
        std::fs::copy(repo().join("sdk/python-client").join(file), source.join(file)).unwrap();
    }
    let package = source.join("agentd_client");
    std::fs::create_dir(&package).unwrap();
    for entry in std::fs::read_dir(repo().join("sdk/python-client/agentd_client")).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), package.join(entry.file_name())).unwrap();
        }
    }
    let installed = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--no-index", "--no-build-isolation"])
        .arg(&source)
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(installed.status.success(), "{}", text(&installed));
    let imported = Command::new(&python)
        .args(["-c", "import agentd_client, sys; print(agentd_client.__version__, agentd_client.__file__)"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let shown = text(&imported);
    assert!(imported.status.success() && shown.contains(&venv.display().to_string()), "{shown}");
}
