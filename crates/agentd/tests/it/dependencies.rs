//! Dependencies installed at deploy: builds in the sandbox, once per digest and tenant,
//! mounted read-only into runs; failures (network, time, size) that say why and leave
//! the previous version active; offline builds from vendored wheels; remote workers.
//! Tests that install from PyPI or npm skip with one line when those are unreachable,
//! except under CI (see `agentd_test_support::package_index_networks`).

use std::path::Path;
use std::time::Duration;

use agentd_api_types::{BuildStatus, InvocationStatus, VersionBuildResponse};
use agentd_test_support::{Backend, on_both_stores, package_index_networks};

use crate::harness::{TestApp, TestTenant, examples_dir, invoke_and_wait};

/// Polls version `n`'s build until it settles (installs here take a few seconds).
async fn settled_build(tenant: &TestTenant, slug: &str, n: u32) -> VersionBuildResponse {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let build = tenant.client.version_build(slug, n).await.expect("read the build");
        if build.status.is_settled() || tokio::time::Instant::now() >= deadline {
            return build;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (name, content) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, content).unwrap();
    }
}

/// A pure-Python wheel `demo_vendored-1.0` whose module holds `VALUE` and, to make it big,
/// `padding_bytes` of incompressible data in a second file.
fn write_wheel(wheels: &Path, padding_bytes: usize) {
    std::fs::create_dir_all(wheels).unwrap();
    let script = r#"
import os, sys, zipfile
path, padding = sys.argv[1], int(sys.argv[2])
with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as whl:
    whl.writestr("demo_vendored/__init__.py", "VALUE = 'vendored ok'\n")
    if padding:
        whl.writestr("demo_vendored/padding.bin", os.urandom(padding))
    info = "demo_vendored-1.0.dist-info/"
    whl.writestr(info + "METADATA", "Metadata-Version: 2.1\nName: demo-vendored\nVersion: 1.0\n")
    whl.writestr(info + "WHEEL", "Wheel-Version: 1.0\nGenerator: agentd-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
    whl.writestr(info + "RECORD", "")
"#;
    let wheel = wheels.join("demo_vendored-1.0-py3-none-any.whl");
    let status = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&wheel)
        .arg(padding_bytes.to_string())
        .status()
        .expect("run python3");
    assert!(status.success(), "writing the wheel failed");
}

/// A Python agent that imports the vendored wheel and reports where it came from.
fn write_vendored_agent(dir: &Path, name: &str, padding_bytes: usize) {
    let manifest =
        format!("name = \"{name}\"\nruntime = \"python\"\nentrypoint = \"main.py\"\n[dependencies]\noffline = true\n");
    let main = "import demo_vendored\nfrom agentd import run\nrun(lambda ctx: {'value': demo_vendored.VALUE, 'file': demo_vendored.__file__})\n";
    write_files(dir, &[("agent.toml", &manifest), ("main.py", main), ("requirements.txt", "demo-vendored==1.0\n")]);
    write_wheel(&dir.join("wheels"), padding_bytes);
}

/// A Node agent whose `package.json` runs `postinstall` at install time.
fn write_node_agent(dir: &Path, name: &str, postinstall: &str) {
    let manifest = format!("name = \"{name}\"\nruntime = \"node\"\nentrypoint = \"main.mjs\"\n");
    let package = serde_json::json!({
        "name": name, "version": "1.0.0", "private": true, "scripts": {"postinstall": postinstall}
    });
    let main = "import { run } from \"agentd\";\nrun(async () => ({ ran: \"node\" }));\n";
    write_files(dir, &[("agent.toml", &manifest), ("main.mjs", main), ("package.json", &package.to_string())]);
}

on_both_stores!(python_requirements_are_installed_once_per_digest_and_runs_import_them);
async fn python_requirements_are_installed_once_per_digest_and_runs_import_them(backend: Backend) {
    let Some(networks) = package_index_networks() else { return };
    let app = TestApp::spawn_with(backend, &[("AGENTD_EGRESS_ALLOWED_NETWORKS", &networks)]).await;
    let tenant = app.signup("deps").await;
    let first = app.deploy_example(&tenant, "python-deps").await;
    assert!(!first.build.status.is_settled() || first.build.status == BuildStatus::Ready, "{:?}", first.build);
    assert_eq!(first.build.installer.as_deref(), Some("pip install -r requirements.txt"));
    let build = settled_build(&tenant, "python-deps", first.version).await;
    assert_eq!(build.status, BuildStatus::Ready, "{build:?}");
    assert!(build.log.iter().any(|line| line.message.contains("Successfully installed humanize-4.9.0")), "{build:?}");
    assert!(build.installed_bytes.is_some_and(|b| b > 0));

    let run = invoke_and_wait(&tenant, "python-deps", serde_json::json!({"bytes": 5_000_000})).await;
    assert_eq!(run.status, InvocationStatus::Succeeded, "{run:?}");
    let output = run.output.expect("output");
    assert_eq!(output["size"], "5.0 MB");
    assert_eq!(output["humanize"], "4.9.0");

    // The same requirements again, in another agent of the tenant: no new build.
    let dir = tempfile::tempdir().unwrap();
    let example = examples_dir().join("python-deps");
    let main = "import humanize\nfrom agentd import run\nrun(lambda ctx: {'file': humanize.__file__})\n";
    let manifest = "name = \"again\"\nruntime = \"python\"\nentrypoint = \"main.py\"\n";
    let requirements = std::fs::read_to_string(example.join("requirements.txt")).unwrap();
    write_files(dir.path(), &[("agent.toml", manifest), ("main.py", main), ("requirements.txt", &requirements)]);
    let second = app.deploy_dir(&tenant, "again", dir.path()).await;
    assert_eq!(second.build.status, BuildStatus::Ready, "the cached build is ready at once: {:?}", second.build);
    assert_eq!(second.build.id, first.build.id, "one build serves both versions");
    let run = invoke_and_wait(&tenant, "again", serde_json::json!({})).await;
    assert_eq!(run.status, InvocationStatus::Succeeded, "{run:?}");
    let file = run.output.expect("output")["file"].as_str().unwrap_or_default().to_owned();
    assert!(file.starts_with("/deps/python/humanize/"), "imported from the installed prefix: {file}");
}

on_both_stores!(a_node_lock_file_installs_with_npm_ci);
async fn a_node_lock_file_installs_with_npm_ci(backend: Backend) {
    let Some(networks) = package_index_networks() else { return };
    let app = TestApp::spawn_with(backend, &[("AGENTD_EGRESS_ALLOWED_NETWORKS", &networks)]).await;
    let tenant = app.signup("nodedeps").await;
    let version = app.deploy_example(&tenant, "node-deps").await;
    assert_eq!(version.build.installer.as_deref(), Some("npm ci --omit=dev"));
    assert!(version.build.warnings.is_empty(), "a lock file pins versions: {:?}", version.build.warnings);
    let build = settled_build(&tenant, "node-deps", version.version).await;
    assert_eq!(build.status, BuildStatus::Ready, "{build:?}");
    let run = invoke_and_wait(&tenant, "node-deps", serde_json::json!({"value": "7"})).await;
    assert_eq!(run.status, InvocationStatus::Succeeded, "{run:?}");
    assert_eq!(run.output.expect("output")["is_number"], true);
    let again = app.deploy_example(&tenant, "node-deps").await;
    assert_eq!((again.build.status, again.build.id), (BuildStatus::Ready, version.build.id));
}

on_both_stores!(an_install_script_reaches_no_host_but_the_package_indexes);
async fn an_install_script_reaches_no_host_but_the_package_indexes(backend: Backend) {
    // 127.0.0.2 stands in for any outside host: exempt from the deny list, so only the
    // build's host list (the package indexes) keeps the install script from it.
    let listener = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        use std::io::Write;
        for mut conn in listener.incoming().map_while(Result::ok) {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    let app = TestApp::spawn_with(backend, &[("AGENTD_EGRESS_ALLOWED_NETWORKS", "127.0.0.2/32")]).await;
    let tenant = app.signup("sneaky").await;
    let dir = tempfile::tempdir().unwrap();
    write_node_agent(dir.path(), "sneaky", "echo no install script here");
    std::fs::remove_file(dir.path().join("package.json")).unwrap();
    let plain = app.deploy_dir(&tenant, "sneaky", dir.path()).await;
    assert_eq!((plain.version, plain.build.status, plain.build.id.is_none()), (1, BuildStatus::Ready, true));

    let fetch = format!("curl -sS --max-time 10 -f http://127.0.0.2:{port}/ && echo REACHED || (echo BLOCKED; exit 1)");
    write_node_agent(dir.path(), "sneaky", &fetch);
    let version = app.deploy_dir(&tenant, "sneaky", dir.path()).await;
    assert_eq!(version.build.warnings.len(), 1, "no lock file is a warning: {:?}", version.build);
    let build = settled_build(&tenant, "sneaky", version.version).await;
    assert_eq!(build.status, BuildStatus::Failed, "{build:?}");
    let log: Vec<&str> = build.log.iter().map(|l| l.message.as_str()).collect();
    assert!(log.contains(&"BLOCKED") && !log.contains(&"REACHED"), "{log:#?}");
    assert!(build.error.as_deref().is_some_and(|e| e.contains("403")), "the proxy's refusal is the reason: {build:?}");
    let refused = format!("the egress proxy refused 127.0.0.2:{port}: 127.0.0.2 is not on this agent's egress list");
    assert!(build.error.as_deref().is_some_and(|e| e.contains(&refused)), "{build:?}");
    assert!(log.iter().any(|line| line.contains(&refused)), "{log:#?}");

    let agent = tenant.client.agent_get("sneaky").await.unwrap();
    assert_eq!(agent.active_version, Some(1), "a failed build leaves the previous version active");
    let run = invoke_and_wait(&tenant, "sneaky", serde_json::json!({})).await;
    assert_eq!((run.status, run.version), (InvocationStatus::Succeeded, 1));
    let refused = tenant.client.version_activate("sneaky", 2).await.err().and_then(|e| e.code().map(str::to_owned));
    assert_eq!(refused.as_deref(), Some("version_not_ready"));
}

on_both_stores!(a_build_over_its_time_is_stopped_and_nothing_runs_it_meanwhile);
async fn a_build_over_its_time_is_stopped_and_nothing_runs_it_meanwhile(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_LIMITS_BUILD_TIMEOUT_S", "3")]).await;
    let tenant = app.signup("slow").await;
    let dir = tempfile::tempdir().unwrap();
    write_node_agent(dir.path(), "slow", "sleep 60");
    let version = app.deploy_dir(&tenant, "slow", dir.path()).await;
    assert!(!version.build.status.is_settled(), "{:?}", version.build);
    // While it builds, the agent has no version to run and this one cannot be activated.
    let invoked = tenant.client.invoke("slow", &Default::default(), &Default::default()).await;
    assert_eq!(invoked.err().and_then(|e| e.code().map(str::to_owned)).as_deref(), Some("agent_building"));
    let activated = tenant.client.version_activate("slow", version.version).await;
    assert_eq!(activated.err().and_then(|e| e.code().map(str::to_owned)).as_deref(), Some("version_not_ready"));

    let build = settled_build(&tenant, "slow", version.version).await;
    assert_eq!(build.status, BuildStatus::Failed, "{build:?}");
    assert!(build.error.as_deref().is_some_and(|e| e.contains("build_timeout_s = 3")), "{build:?}");
    assert_eq!(tenant.client.agent_get("slow").await.unwrap().active_version, None);
}

on_both_stores!(an_install_over_the_size_cap_fails_with_the_reason);
async fn an_install_over_the_size_cap_fails_with_the_reason(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_LIMITS_MAX_DEPENDENCY_BYTES", "1048576")]).await;
    let tenant = app.signup("big").await;
    let dir = tempfile::tempdir().unwrap();
    write_vendored_agent(dir.path(), "big", 3 << 20);
    let version = app.deploy_dir(&tenant, "big", dir.path()).await;
    let build = settled_build(&tenant, "big", version.version).await;
    assert_eq!(build.status, BuildStatus::Failed, "{build:?}");
    assert!(build.error.as_deref().is_some_and(|e| e.contains("size cap of 1.0 MiB")), "{build:?}");
}

on_both_stores!(offline_builds_install_vendored_wheels_per_tenant_with_the_index_unreachable);
async fn offline_builds_install_vendored_wheels_per_tenant_with_the_index_unreachable(backend: Backend) {
    // Nothing answers on port 9: were the build to use the index, it would fail.
    let app = TestApp::spawn_with(backend, &[("AGENTD_PYTHON_INDEX_URL", "http://127.0.0.1:9/simple")]).await;
    let tenant = app.signup("vendored").await;
    let dir = tempfile::tempdir().unwrap();
    write_vendored_agent(dir.path(), "vendored", 0);
    let version = app.deploy_dir(&tenant, "vendored", dir.path()).await;
    assert_eq!(version.build.installer.as_deref(), Some("pip install -r requirements.txt (offline)"));
    let build = settled_build(&tenant, "vendored", version.version).await;
    assert_eq!(build.status, BuildStatus::Ready, "{build:?}");
    let run = invoke_and_wait(&tenant, "vendored", serde_json::json!({})).await;
    assert_eq!(run.status, InvocationStatus::Succeeded, "{run:?}");
    let output = run.output.expect("output");
    assert_eq!(output["value"], "vendored ok");
    assert!(output["file"].as_str().is_some_and(|f| f.starts_with("/deps/python/")), "{output}");

    // The tenant's other agent shares the build; another tenant never does.
    let copy = app.deploy_dir(&tenant, "vendored-too", dir.path()).await;
    assert_eq!(copy.build.id, version.build.id);
    let other = app.signup("other").await;
    let theirs = app.deploy_dir(&other, "vendored", dir.path()).await;
    assert_ne!(theirs.build.id, version.build.id, "builds are never shared across tenants");
    assert_eq!(settled_build(&other, "vendored", 1).await.status, BuildStatus::Ready);
    // Another tenant's build is not found through this tenant's agent of the same slug.
    let mine = tenant.client.version_build("vendored", 1).await.unwrap();
    assert_eq!(mine.id, version.build.id);
}

on_both_stores!(a_remote_worker_builds_and_runs_with_the_built_dependencies);
async fn a_remote_worker_builds_and_runs_with_the_built_dependencies(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_WORKER_SLOTS", "0")]).await;
    let token = app.create_worker_token();
    let _worker = app.spawn_worker(&token, "builder");
    let tenant = app.signup("remote").await;
    let dir = tempfile::tempdir().unwrap();
    write_vendored_agent(dir.path(), "remote", 0);
    let version = app.deploy_dir(&tenant, "remote", dir.path()).await;
    let build = settled_build(&tenant, "remote", version.version).await;
    assert_eq!(build.status, BuildStatus::Ready, "{build:?}");
    let run = invoke_and_wait(&tenant, "remote", serde_json::json!({})).await;
    assert_eq!(run.status, InvocationStatus::Succeeded, "{run:?}");
    assert_eq!(run.output.expect("output")["value"], "vendored ok");
}

on_both_stores!(a_runtime_version_the_platform_lacks_is_refused_at_deploy);
async fn a_runtime_version_the_platform_lacks_is_refused_at_deploy(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tenant = app.signup("versions").await;
    let runtimes = tenant.client.runtimes().await.expect("list runtimes").data;
    let python = runtimes.iter().find(|r| r.runtime == "python").expect("python is listed");
    let version = python.version.clone().expect("the host's python has a version");
    assert!(python.available && version.starts_with('3'), "{runtimes:?}");

    let dir = tempfile::tempdir().unwrap();
    let main = "from agentd import run\nrun(lambda ctx: {'ok': True})\n";
    let manifest =
        |asked: &str| format!("name = \"v\"\nruntime = \"python\"\nentrypoint = \"main.py\"\npython = \"{asked}\"\n");
    write_files(dir.path(), &[("agent.toml", &manifest(">=99")), ("main.py", main)]);
    tenant
        .client
        .agent_create(&agentd_api_types::CreateAgentRequest { slug: "v".into(), ..Default::default() })
        .await
        .unwrap();
    let bundle = agentd_bundle::pack_dir(dir.path()).unwrap();
    let err = tenant.client.version_upload("v", bundle, true).await.expect_err("no python 99 here");
    assert_eq!((err.status(), err.code()), (Some(422), Some("runtime_unavailable")));
    assert!(err.to_string().contains(&version), "the message names what the platform has: {err}");

    write_files(dir.path(), &[("agent.toml", &manifest(">=3"))]);
    let deployed = app.deploy_dir(&tenant, "v", dir.path()).await;
    assert_eq!(deployed.version, 1, "the refused upload left no version behind");
    let run = invoke_and_wait(&tenant, "v", serde_json::json!({})).await;
    assert_eq!(run.status, InvocationStatus::Succeeded, "{run:?}");
}

on_both_stores!(the_cli_waits_for_the_build_and_shows_its_log_when_it_fails);
async fn the_cli_waits_for_the_build_and_shows_its_log_when_it_fails(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_LIMITS_MAX_DEPENDENCY_BYTES", "1048576")]).await;
    let shell = crate::cli::Shell::new(&app.base_url);
    shell.signup().await;
    let small = tempfile::tempdir().unwrap();
    write_vendored_agent(small.path(), "cli-deps", 0);
    let deployed = shell.ok(&["agents", "deploy", small.path().to_str().unwrap()]).await;
    assert!(
        deployed.stdout.contains("Dependencies installed (pip install -r requirements.txt (offline))"),
        "{deployed:#?}"
    );
    assert!(deployed.stdout.contains("Version 1 is now active."), "{deployed:#?}");

    let big = tempfile::tempdir().unwrap();
    write_vendored_agent(big.path(), "cli-deps", 3 << 20);
    let failed = shell.run(&["agents", "deploy", big.path().to_str().unwrap()]).await;
    assert_eq!(failed.code, Some(1), "{failed:#?}");
    assert!(failed.stderr.contains("dependency build log of version 2"), "{failed:#?}");
    assert!(failed.stderr.contains("No space left on device"), "the installer's own words: {failed:#?}");
    assert!(failed.stderr.contains("error: the dependency build of version 2 failed"), "{failed:#?}");
    let shown = shell.ok(&["agents", "show", "cli-deps", "--json"]).await;
    assert!(shown.stdout.contains("\"active_version\": 1"), "{shown:#?}");
}

on_both_stores!(a_builds_log_streams_live_and_resumes_after_last_event_id);
async fn a_builds_log_streams_live_and_resumes_after_last_event_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let tenant = app.signup("streams").await;
    let dir = tempfile::tempdir().unwrap();
    write_vendored_agent(dir.path(), "streamed", 0);
    let version = app.deploy_dir(&tenant, "streamed", dir.path()).await;
    let path = format!("/v1/agents/streamed/versions/{}/build/events", version.version);
    let messages = crate::events::read_stream(&app.base_url, &tenant, &path, None).await;
    let (end, lines) = messages.split_last().expect("messages");
    assert_eq!(end.event, "end");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&end.data).unwrap()["status"], "ready");
    assert!(lines.iter().all(|m| m.event == "log"), "{messages:?}");
    assert!(lines.iter().any(|m| m.data.contains("Successfully installed demo-vendored-1.0")), "{messages:?}");
    let ids: Vec<u64> = lines.iter().map(|m| m.id.as_deref().unwrap().parse().unwrap()).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "every line, in order");

    let resumed = crate::events::read_stream(&app.base_url, &tenant, &path, Some(2)).await;
    assert_eq!(resumed.first().and_then(|m| m.id.as_deref()), Some("3"));
    assert_eq!(resumed.len(), messages.len() - 2);
    // A version without dependencies ends at once, ready.
    let plain = app.deploy_script(&tenant, "plain", "true").await;
    let path = format!("/v1/agents/plain/versions/{}/build/events", plain.version);
    let ended = crate::events::read_stream(&app.base_url, &tenant, &path, None).await;
    assert_eq!(ended.len(), 1);
    assert!(ended[0].data.contains("\"ready\""));
}

on_both_stores!(a_build_in_flight_at_shutdown_goes_back_without_spending_a_start);
async fn a_build_in_flight_at_shutdown_goes_back_without_spending_a_start(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let tenant = app.signup("restart").await;
    let dir = tempfile::tempdir().unwrap();
    write_node_agent(dir.path(), "slow", "sleep 60");
    let version = app.deploy_dir(&tenant, "slow", dir.path()).await;
    let building = |client: agentd_client::Client| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let build = client.version_build("slow", 1).await.unwrap();
            if build.status == BuildStatus::Building || tokio::time::Instant::now() >= deadline {
                return build;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert_eq!(building(tenant.client.clone()).await.attempt, 1);
    app.stop().await;
    app.start_again().await;
    // Handed back at shutdown, the build starts again at once (not after its lease), and
    // as attempt 1 again: its log shows the installer starting twice as attempt 1.
    let client = app.client().with_token(tenant.key.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let again = loop {
        let build = client.version_build("slow", 1).await.unwrap();
        let starts = build.log.iter().filter(|l| l.stream == "system" && l.message.contains("(attempt 1;")).count();
        if starts == 2 || tokio::time::Instant::now() >= deadline {
            break build;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let starts: Vec<&str> =
        again.log.iter().filter(|l| l.message.contains("(attempt ")).map(|l| l.message.as_str()).collect();
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert!(starts.iter().all(|m| m.contains("(attempt 1;")), "the shutdown did not count: {starts:?}");
    assert_eq!((again.status, again.id), (BuildStatus::Building, version.build.id));
}
