//! The example agents in `examples/agents/` are deployable as they are.

use std::path::Path;

use agentd_bundle::{Runtime, pack_dir};

use crate::inspected;

#[test]
fn every_example_agent_packs_into_a_valid_bundle() {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/agents");
    let mut runtimes = Vec::new();
    for entry in std::fs::read_dir(&examples).unwrap() {
        let folder = entry.unwrap().path();
        if !folder.join("agent.toml").is_file() {
            continue;
        }
        let bundle = inspected(&pack_dir(&folder).unwrap());
        let name = folder.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(bundle.manifest.name, name, "the manifest names its folder");
        runtimes.push(bundle.manifest.runtime);
    }
    for runtime in [Runtime::Python, Runtime::Node, Runtime::Shell] {
        assert!(runtimes.contains(&runtime), "an example for {runtime}");
    }
}
