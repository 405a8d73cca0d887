//! Issue #12 parts 1 and 4, through the operator CLI in a child process with a controlled
//! environment: children see only the allow-listed environment, and a source URL's credentials
//! (user info, signed query) reach the download only — never the contract, the manifest, the
//! HyOps state file, the log, the cache or a child's environment.

use super::*;

#[path = "../common/http_file.rs"]
mod http_file;

/// Common secrets an operator's shell may hold (name, value). None may reach a child.
const SECRETS: &[(&str, &str)] = &[
    ("AZURE_STORAGE_ACCOUNT_KEY", "leak-azure-account-key-51c0"),
    ("AZURE_STORAGE_KEY", "leak-azure-key-8d21"),
    ("AZURE_STORAGE_SAS_KEY", "leak-azure-sas-key-2b7e"),
    ("AZURE_STORAGE_SAS_TOKEN", "leak-azure-sas-token-60fa"),
    ("AZURE_STORAGE_TOKEN", "leak-azure-token-93d4"),
    ("AZURE_CLIENT_SECRET", "leak-azure-client-secret-1e88"),
    ("AWS_TOKEN", "leak-aws-token-7a3c"),
    ("AWS_SECRET_ACCESS_KEY", "leak-aws-secret-key-c94f"),
    ("AWS_SESSION_TOKEN", "leak-aws-session-token-05b2"),
    ("VAULT_TOKEN", "leak-vault-token-e613"),
    ("GITHUB_TOKEN", "leak-github-token-4d9a"),
    (
        "GOOGLE_APPLICATION_CREDENTIALS",
        "/nonexistent/leak-google-adc-3f17.json",
    ),
    ("ACME_DATABASE_PASSWORD", "leak-unrelated-secret-77c5"),
];

/// Allow-listed variables the operator's shell holds (name, value); each must reach every child.
fn allowed(home: &Path, tmp: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("PATH", std::env::var("PATH").unwrap()),
        ("HOME", home.display().to_string()),
        ("USER", "hyops-operator".into()),
        ("LOGNAME", "hyops-operator".into()),
        ("LANG", "C.UTF-8".into()),
        ("LC_MESSAGES", "C".into()),
        ("TZ", "UTC".into()),
        ("TERM", "dumb".into()),
        ("TMPDIR", tmp.display().to_string()),
        ("http_proxy", "http://proxy.invalid:3128".into()),
        ("HTTPS_PROXY", "http://proxy.invalid:3129".into()),
        ("all_proxy", "http://proxy.invalid:3130".into()),
        ("no_proxy", "127.0.0.1,localhost".into()),
        ("NO_PROXY", "127.0.0.1,localhost".into()),
        ("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt".into()),
        ("SSL_CERT_DIR", "/etc/ssl/certs".into()),
    ]
}

/// A service-account JSON with a freshly generated RSA key (openssl), and one line of the key's
/// base64 body to search for.
fn service_account_json() -> (String, String) {
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let pem = String::from_utf8(out.stdout).unwrap();
    let key_line = pem.lines().nth(3).unwrap().to_owned();
    let json = serde_json::json!({
        "type": "service_account",
        "client_email": "builder@example.iam.gserviceaccount.com",
        "private_key": pem,
        "private_key_id": "k1",
        "token_uri": "http://127.0.0.1:9/token"
    });
    (json.to_string(), key_line)
}

struct CliRun {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

/// Runs `image apply --verbose` of `spec` in a child process of this test binary (see
/// `cli_tests::cli_child_entry`) whose environment is exactly `env`.
async fn apply_in_child(
    f: &CreateFixture,
    spec: &serde_json::Value,
    env: &[(&str, String)],
) -> CliRun {
    let spec_path = f.path("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec(spec).unwrap()).unwrap();
    let args = serde_json::json!(["image", "apply", "--verbose", "--config", spec_path]);
    let stdout_path = f.path("cli-stdout");
    let out = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "cli_tests::cli_child_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_clear()
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("HYOPS_TEST_CLI_ARGS", args.to_string())
        .env("HYOPS_TEST_CLI_STDOUT", &stdout_path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    CliRun {
        code: out.status.code(),
        stdout: std::fs::read(&stdout_path).unwrap_or_default(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn dump_vars(dump: &str) -> BTreeMap<String, String> {
    dump.split('\0')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim_start_matches('\n').to_owned(), v.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_children_get_only_the_allow_listed_environment() {
    let f = create_fixture();
    let d = f.dir.path().display();
    let home = f.path("home");
    let tmp = f.path("tmp");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    let spec = serde_json::json!({
        "artifact_key": "vyos-env",
        "artifact_version": "1.5-env",
        "source_iso_url": f.iso_url,
        "source_iso_sha256": f.iso_sha256,
        "build": { "method": "command",
                   "command": format!("env -0 > {d}/env.build; qemu-img create -q -f qcow2 \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 1G"),
                   "environment": { "BUILD_ENV_ENTRY": "from-build-environment" },
                   "pass_environment": ["HYOPS_TEST_OPTED_IN", "HYOPS_TEST_NOT_SET"] },
        "smoke_verify": { "command": format!("env -0 > {d}/env.verify") },
        "publish": { "command": format!("env -0 > {d}/env.publish; cp \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" {d}/published.qcow2; echo file://{d}/published.qcow2") },
        "provider": { "cache_dir": f.path("cache") }
    });
    let mut env = allowed(&home, &tmp);
    env.extend(SECRETS.iter().map(|(k, v)| (*k, (*v).to_owned())));
    // A usable service-account JSON (the publish command gets it as a 0600 file path only).
    let (sa_json, key_line) = service_account_json();
    env.push(("HYOPS_VYOS_GCS_SA_JSON", sa_json));
    env.push(("HYOPS_TEST_OPTED_IN", "opted-in-value".into()));
    let run = apply_in_child(&f, &spec, &env).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);
    let contract: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(contract["published"], true, "{contract}");

    for child in ["build", "verify", "publish"] {
        let dump = std::fs::read_to_string(f.path(&format!("env.{child}"))).unwrap();
        let vars = dump_vars(&dump);
        for (name, value) in SECRETS {
            assert!(!vars.contains_key(*name), "{child} got {name}");
            assert!(!dump.contains(value), "{child} got the value of {name}");
        }
        assert!(
            !vars.contains_key("HYOPS_VYOS_GCS_SA_JSON"),
            "{child} got the SA JSON"
        );
        assert!(!dump.contains(&key_line), "{child} got the private key");
        if child == "publish" {
            let path = vars
                .get("HYOPS_VYOS_GCS_SA_JSON_FILE")
                .expect("credential file path");
            assert!(!Path::new(path).exists(), "credential file left behind");
        } else {
            assert!(!vars.contains_key("HYOPS_VYOS_GCS_SA_JSON_FILE"), "{child}");
        }
        for plumbing in ["HYOPS_TEST_CLI_ARGS", "HYOPS_TEST_CLI_STDOUT"] {
            assert!(!vars.contains_key(plumbing), "{child} got {plumbing}");
        }
        for (name, value) in allowed(&home, &tmp) {
            // `bash -l` reads /etc/profile, which may rewrite PATH: its presence is what counts.
            if name == "PATH" {
                assert!(vars.contains_key("PATH"), "{child} lacks PATH");
            } else {
                assert_eq!(vars.get(name), Some(&value), "{child}: {name}");
            }
        }
        assert_eq!(
            vars.get("BUILD_ENV_ENTRY").map(String::as_str),
            Some("from-build-environment"),
            "{child}"
        );
        assert_eq!(
            vars.get("HYOPS_TEST_OPTED_IN").map(String::as_str),
            Some("opted-in-value"),
            "{child}"
        );
        assert!(!vars.contains_key("HYOPS_TEST_NOT_SET"), "{child}");
        assert_eq!(
            vars.get("HYOPS_VYOS_ARTIFACT_KEY").map(String::as_str),
            Some("vyos-env"),
            "{child}"
        );
        assert_eq!(
            vars.get("HYOPS_VYOS_SOURCE_ISO_URL"),
            Some(&f.iso_url),
            "{child}"
        );
        assert!(
            vars.contains_key("HYOPS_VYOS_ARTIFACT_LOCAL_PATH"),
            "{child}"
        );
        // Of everything the operator's shell held, only the allow-listed and opted-in names
        // arrive (variables the login shell creates itself are not inherited, so not counted).
        let leaked: Vec<&str> = env
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| vars.contains_key(*k))
            .filter(|k| !allowed(&home, &tmp).iter().any(|(n, _)| n == k))
            .filter(|k| *k != "HYOPS_TEST_OPTED_IN")
            .collect();
        assert!(leaked.is_empty(), "{child} inherited {leaked:?}");
    }
}

/// Every regular file under `dir` (recursively).
fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(p),
                Ok(t) if t.is_file() => out.push(p),
                _ => {}
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_source_url_credentials_reach_the_download_only() {
    let f = create_fixture();
    let d = f.dir.path().display();
    let iso_bytes = std::fs::read(f.path("fixture.iso")).unwrap();
    let server = http_file::HttpFile::serve(iso_bytes);
    let port = server.addr.port();
    // Distinct markers for the user, the password and each query value.
    let secret_url = format!(
        "http://isouser-5e1d:isopass-a9c3@127.0.0.1:{port}/vyos/fixture.iso\
         ?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=isocred-0f4b\
         &X-Goog-Signature=isosig-d27a#frag-isofrag-61b0"
    );
    let markers = [
        "isouser-5e1d",
        "isopass-a9c3",
        "isocred-0f4b",
        "isosig-d27a",
        "isofrag-61b0",
    ];
    let provenance = format!("http://127.0.0.1:{port}/vyos/fixture.iso");
    let repo = f.path("repo");
    let runtime = f.path("runtime");
    let cache = f.path("cache");
    std::fs::create_dir_all(&repo).unwrap();
    let spec = serde_json::json!({
        "artifact_key": "vyos-prov",
        "artifact_version": "1.5-prov",
        "source_iso_url": secret_url,
        "source_iso_sha256": f.iso_sha256,
        "hyops_state_instance": "prov",
        "build": { "method": "command",
                   "command": format!("env -0 > {d}/env.build; echo \"building from $HYOPS_VYOS_SOURCE_ISO_URL\"; qemu-img create -q -f qcow2 \"$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 1G") },
        "smoke_verify": { "command": format!("env -0 > {d}/env.verify") },
        "publish": { "backend": "file", "bucket": repo, "prefix": "vyos" },
        "provider": { "cache_dir": cache, "runtime_root": runtime }
    });
    let home = f.path("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut env = allowed(&home, &f.path("tmp"));
    std::fs::create_dir_all(f.path("tmp")).unwrap();
    env.retain(|(k, _)| !k.to_ascii_lowercase().ends_with("proxy"));
    let run = apply_in_child(&f, &spec, &env).await;
    assert_eq!(run.code, Some(0), "stderr: {}", run.stderr);

    // The download used the full URL: credentials and signature were sent.
    let heads = server.heads();
    assert!(
        heads
            .iter()
            .any(|h| h.contains("X-Goog-Signature=isosig-d27a")
                && h.to_ascii_lowercase().contains("authorization: basic")),
        "{heads:?}"
    );

    let no_marker = |what: &str, text: &str| {
        for m in markers {
            assert!(!text.contains(m), "{what} holds {m}: {text}");
        }
    };
    // The contract (what Terraform state and outputs get).
    let stdout = String::from_utf8(run.stdout.clone()).unwrap();
    no_marker("the contract", &stdout);
    let contract: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(contract["source_iso_url"], provenance.as_str());
    let entries = contract["artifacts"].as_object().unwrap();
    assert!(!entries.is_empty());
    for e in entries.values() {
        assert_eq!(e["source_iso_url"], provenance.as_str());
    }
    // The manifest next to the artifact.
    let manifests: Vec<PathBuf> = all_files(&repo)
        .into_iter()
        .filter(|p| p.ends_with("manifest.json"))
        .collect();
    assert_eq!(manifests.len(), 1, "{:?}", all_files(&repo));
    let manifest = std::fs::read_to_string(&manifests[0]).unwrap();
    no_marker("the manifest", &manifest);
    assert!(manifest.contains(&provenance), "{manifest}");
    // The HyOps state file.
    let states = all_files(&runtime);
    assert_eq!(states.len(), 1, "{states:?}");
    let state = std::fs::read_to_string(&states[0]).unwrap();
    no_marker("the HyOps state", &state);
    assert!(state.contains(&provenance), "{state}");
    // Children's environments.
    for child in ["build", "verify"] {
        let dump = std::fs::read_to_string(f.path(&format!("env.{child}"))).unwrap();
        no_marker(child, &dump);
        assert_eq!(
            dump_vars(&dump).get("HYOPS_VYOS_SOURCE_ISO_URL"),
            Some(&provenance),
            "{child}"
        );
    }
    // The debug log on stderr, and everything the provider wrote to disk (build log, cache
    // records, ISO, artifacts).
    no_marker("the log", &run.stderr);
    let mut written = all_files(&cache);
    written.extend(all_files(&repo));
    assert!(written
        .iter()
        .any(|p| p.extension().is_some_and(|e| e == "log")));
    for p in written {
        no_marker(
            &p.display().to_string(),
            &String::from_utf8_lossy(&std::fs::read(&p).unwrap()),
        );
    }
}
