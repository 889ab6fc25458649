//! Bad bundles are rejected with a clear code and leave nothing behind.

use std::path::Path;
use std::process::Command;

use agentd_api_types::CreateAgentRequest;
use agentd_client::ListOptions;
use agentd_test_support::{Backend, on_both_stores};

use crate::harness::{TestApp, TestTenant};

/// Builds a tar.gz with Python's tarfile, which can write the hostile entries
/// (`..` paths, escaping links) that our own packer refuses to produce.
fn hostile_tar(dir: &Path, script: &str) -> Vec<u8> {
    let out = dir.join("bundle.tar.gz");
    let program = format!(
        "import io, tarfile, sys\n\
         t = tarfile.open(sys.argv[1], 'w:gz')\n\
         def add(name, data=b'', kind=tarfile.REGTYPE, link='', mode=0o644):\n\
         \x20   i = tarfile.TarInfo(name); i.type = kind; i.linkname = link; i.mode = mode; i.size = len(data) if kind == tarfile.REGTYPE else 0\n\
         \x20   t.addfile(i, io.BytesIO(data) if kind == tarfile.REGTYPE else None)\n\
         {script}\n\
         t.close()\n"
    );
    let status = Command::new("/usr/bin/python3").arg("-c").arg(program).arg(&out).status().unwrap();
    assert!(status.success());
    std::fs::read(out).unwrap()
}

const MANIFEST: &str = "add('agent.toml', b'name = \"x\"\\nruntime = \"shell\"\\nentrypoint = \"run.sh\"\\n')";
const RUN_SH: &str = "add('run.sh', b'#!/bin/sh\\necho hi\\n', mode=0o755)";

async fn upload(tenant: &TestTenant, bytes: Vec<u8>, what: &str) -> (Option<u16>, Option<String>) {
    let err = tenant.client.version_upload("x", bytes, true).await.expect_err(what);
    (err.status(), err.code().map(str::to_owned))
}

fn stored_blobs(app: &TestApp) -> usize {
    std::fs::read_dir(app.data_dir.join("blobs/sha256")).map(|d| d.count()).unwrap_or(0)
}

on_both_stores!(bad_bundles_are_rejected_with_a_clear_code_and_nothing_is_stored);
async fn bad_bundles_are_rejected_with_a_clear_code_and_nothing_is_stored(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("AGENTD_LIMITS_MAX_BUNDLE_BYTES", "4096")]).await;
    let alpha = app.signup("alpha").await;
    alpha.client.agent_create(&CreateAgentRequest { slug: "x".into(), ..Default::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("no manifest", RUN_SH.to_owned(), 422, "manifest_missing"),
        (
            "unknown runtime",
            "add('agent.toml', b'name = \"x\"\\nruntime = \"cobol\"\\nentrypoint = \"run.sh\"\\n')\n".to_owned()
                + RUN_SH,
            422,
            "runtime_unknown",
        ),
        ("missing entrypoint", MANIFEST.to_owned(), 422, "entrypoint_missing"),
        ("path traversal", format!("{MANIFEST}\n{RUN_SH}\nadd('../../escape.sh', b'x')"), 422, "path_unsafe"),
        ("absolute path", format!("{MANIFEST}\n{RUN_SH}\nadd('/etc/cron.d/x', b'x')"), 422, "path_unsafe"),
        (
            "escaping symlink",
            format!("{MANIFEST}\n{RUN_SH}\nadd('shadow', kind=tarfile.SYMTYPE, link='../../../etc/shadow')"),
            422,
            "symlink_unsafe",
        ),
        ("device node", format!("{MANIFEST}\n{RUN_SH}\nadd('dev', kind=tarfile.CHRTYPE)"), 422, "entry_unsupported"),
    ];
    for (what, script, status, code) in cases {
        let bytes = hostile_tar(dir.path(), &script);
        assert_eq!(upload(&alpha, bytes, what).await, (Some(status), Some(code.to_owned())), "{what}");
    }
    assert_eq!(
        upload(&alpha, b"definitely not an archive".to_vec(), "garbage").await,
        (Some(422), Some("bundle_unreadable".to_owned()))
    );
    // Random bytes do not compress, so the archive is over the 4 KiB limit.
    let big = hostile_tar(dir.path(), &format!("{MANIFEST}\n{RUN_SH}\nimport os\nadd('blob', os.urandom(8192))"));
    assert_eq!(upload(&alpha, big, "too big").await, (Some(413), Some("max_bundle_bytes".to_owned())));

    let versions = alpha.client.versions_list("x", &ListOptions::default()).await.unwrap();
    assert!(versions.data.is_empty(), "a rejected bundle must not become a version");
    assert_eq!(stored_blobs(&app), 0, "a rejected bundle must not be stored");
    // The same agent still takes a good bundle afterwards.
    let good = hostile_tar(dir.path(), &format!("{MANIFEST}\n{RUN_SH}"));
    assert_eq!(alpha.client.version_upload("x", good, true).await.unwrap().version, 1);
}

on_both_stores!(zip_bundles_deploy_and_run);
async fn zip_bundles_deploy_and_run(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let alpha = app.signup("alpha").await;
    alpha.client.agent_create(&CreateAgentRequest { slug: "zipped".into(), ..Default::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b.zip");
    let program = "import zipfile, sys\n\
        z = zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED)\n\
        z.writestr('agent.toml', 'name = \"zipped\"\\nruntime = \"python\"\\nentrypoint = \"main.py\"\\n')\n\
        z.writestr('main.py', 'import agentd\\nagentd.run(lambda ctx: {\"zip\": True})\\n')\n\
        z.close()\n";
    assert!(Command::new("/usr/bin/python3").arg("-c").arg(program).arg(&out).status().unwrap().success());
    alpha.client.version_upload("zipped", std::fs::read(&out).unwrap(), true).await.unwrap();
    let done = crate::harness::invoke_and_wait(&alpha, "zipped", serde_json::json!({})).await;
    assert_eq!(done.output, Some(serde_json::json!({"zip": true})), "{done:?}");
}
