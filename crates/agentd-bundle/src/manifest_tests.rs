//! Unit tests for `agent.toml` parsing: every field check and the JSON round trip.

use super::*;

const FULL: &str = r#"
name = "summarize"
description = "Summarizes a document"
runtime = "python"
entrypoint = "./src/main.py"
tags = ["text"]
[limits]
timeout_s = 60
memory_mb = 256
[network]
egress = ["API.example.com", "*.openai.com"]
"#;

fn invalid(text: &str) -> String {
    match Manifest::from_toml(text) {
        Err(err @ BundleError::ManifestInvalid { .. }) => err.to_string(),
        other => panic!("expected manifest_invalid, got {other:?}"),
    }
}

fn minimal(extra: &str) -> String {
    format!("name = \"a\"\nruntime = \"shell\"\nentrypoint = \"run.sh\"\n{extra}")
}

#[test]
fn a_full_manifest_parses_and_normalizes() {
    let manifest = Manifest::from_toml(FULL).unwrap();
    assert_eq!(manifest.name, "summarize");
    assert_eq!(manifest.runtime, Runtime::Python);
    assert_eq!(manifest.entrypoint, "src/main.py");
    assert_eq!(manifest.limits.timeout_s, Some(60));
    assert_eq!(manifest.network, NetworkPolicy::AllowHosts(vec!["api.example.com".into(), "*.openai.com".into()]));
}

#[test]
fn defaults_deny_the_network_and_set_no_limits() {
    let manifest = Manifest::from_toml(&minimal("")).unwrap();
    assert_eq!(manifest.network, NetworkPolicy::Denied);
    assert_eq!(manifest.limits, ManifestLimits::default());
    assert!(manifest.tags.is_empty());
    let empty_list = Manifest::from_toml(&minimal("[network]\negress = []")).unwrap();
    assert_eq!(empty_list.network, NetworkPolicy::Denied);
}

#[test]
fn the_manifest_round_trips_through_json() {
    for text in [FULL.to_owned(), minimal("")] {
        let manifest = Manifest::from_toml(&text).unwrap();
        let json = serde_json::to_string(&manifest).unwrap();
        assert_eq!(serde_json::from_str::<Manifest>(&json).unwrap(), manifest);
    }
    let json = serde_json::to_value(Manifest::from_toml(FULL).unwrap()).unwrap();
    assert_eq!(json["runtime"], "python");
    assert_eq!(json["network"]["egress"][0], "api.example.com");
}

#[test]
fn unknown_keys_are_refused_with_their_name() {
    assert!(invalid(&minimal("entrypiont = \"x\"")).contains("entrypiont"));
    assert!(invalid(&minimal("[limits]\ntimeout = 3")).contains("timeout"));
}

#[test]
fn bad_fields_are_named() {
    assert!(invalid("runtime = \"shell\"\nentrypoint = \"x\"").contains("`name`"));
    assert!(invalid("name = \" \"\nruntime = \"shell\"\nentrypoint = \"x\"").contains("`name`"));
    let long = "x".repeat(101);
    assert!(invalid(&format!("name = \"{long}\"\nruntime = \"shell\"\nentrypoint = \"x\"")).contains("`name`"));
    assert!(invalid("name = \"a\"\nruntime = \"shell\"\nentrypoint = \"../x\"").contains("`entrypoint`"));
    assert!(invalid("name = \"a\"\nruntime = \"shell\"\nentrypoint = \"/bin/sh\"").contains("`entrypoint`"));
    let tags: Vec<String> = (0..21).map(|i| format!("\"t{i}\"")).collect();
    assert!(invalid(&minimal(&format!("tags = [{}]", tags.join(",")))).contains("`tags`"));
    assert!(invalid(&minimal("[limits]\ntimeout_s = -1")).contains("timeout_s"));
    assert!(invalid(&minimal("[limits]\nmemory_mb = 0")).contains("memory_mb"));
}

#[test]
fn egress_true_must_list_hosts() {
    assert!(invalid(&minimal("[network]\negress = true")).contains("list the host"));
    assert!(invalid(&minimal("[network]\negress = [\"https://x.com/\"]")).contains("host name"));
}

#[test]
fn an_unknown_runtime_lists_the_allowed_ones() {
    let err = Manifest::from_toml("name = \"a\"\nruntime = \"ruby\"\nentrypoint = \"x\"").unwrap_err();
    assert_eq!(err.code(), "runtime_unknown");
    assert!(err.to_string().contains("python, node, shell, binary"), "{err}");
}

#[test]
fn toml_syntax_errors_name_the_line() {
    let message = invalid("name = \"a\"\nruntime = 5\nentrypoint = \"x\"");
    assert!(message.contains("line 2"), "{message}");
    assert!(message.contains("runtime"), "{message}");
}

#[test]
fn env_defaults_and_overridable_names_are_kept_sorted() {
    let manifest = Manifest::from_toml(&minimal(
        "overridable_env = [\"STYLE\", \"MODEL\", \"STYLE\"]\n[env]\nMODEL = \"small\"\nGREETING = \"hi\"",
    ))
    .unwrap();
    assert_eq!(manifest.env.get("MODEL").map(String::as_str), Some("small"));
    assert_eq!(manifest.overridable_env, ["MODEL", "STYLE"]);
    let json = serde_json::to_value(&manifest).unwrap();
    assert_eq!(json["env"]["GREETING"], "hi");
    assert_eq!(serde_json::from_value::<Manifest>(json).unwrap(), manifest);
}

#[test]
fn env_names_the_platform_keeps_are_refused() {
    assert!(invalid(&minimal("[env]\nPATH = \"/evil\"")).contains("`PATH`"));
    assert!(invalid(&minimal("[env]\nLD_PRELOAD = \"/x.so\"")).contains("`LD_PRELOAD`"));
    assert!(invalid(&minimal("overridable_env = [\"AGENTD_TOKEN\"]")).contains("overridable_env"));
    assert!(invalid(&minimal("overridable_env = [\"not-a-name\"]")).contains("not a variable name"));
    assert!(invalid(&minimal("[env]\nPORT = 8080")).contains("PORT"), "values are strings");
}

#[test]
fn schemas_are_stored_as_json_and_must_compile() {
    let manifest = Manifest::from_toml(&minimal(
        "[input_schema]\ntype = \"object\"\nrequired = [\"text\"]\n[input_schema.properties.text]\ntype = \"string\"\n\
         maxLength = 10\n[output_schema]\ntype = \"object\"",
    ))
    .unwrap();
    let input = manifest.input_schema.as_ref().unwrap();
    assert_eq!(input["properties"]["text"]["maxLength"], 10);
    assert_eq!(input["required"][0], "text");
    assert_eq!(manifest.output_schema.as_ref().unwrap()["type"], "object");
    let json = serde_json::to_value(&manifest).unwrap();
    assert_eq!(json["input_schema"]["type"], "object");
    assert_eq!(serde_json::from_value::<Manifest>(json).unwrap(), manifest);
    assert!(invalid(&minimal("[input_schema]\ntype = \"strnig\"")).contains("`input_schema`"));
    assert!(
        invalid(&minimal("[output_schema]\n\"$ref\" = \"https://example.com/s.json\"")).contains("`output_schema`")
    );
    assert!(invalid(&minimal("input_schema = 5")).contains("input_schema"));
}

#[test]
fn manifests_stored_before_configuration_existed_still_read() {
    let stored = serde_json::json!({"name": "a", "runtime": "shell", "entrypoint": "run.sh"});
    let manifest: Manifest = serde_json::from_value(stored).unwrap();
    assert!(manifest.env.is_empty() && manifest.overridable_env.is_empty() && manifest.input_schema.is_none());
}
