//! Credentials and secrets: precedence, errors, logs, argv, child environment.

use crate::support::*;
#[test]
fn gcs_target_without_credential_fails_before_claiming_and_names_every_source() {
    let spec = PublishSpec {
        backend: Some(Backend::Gcs),
        bucket: Some("some-bucket".into()),
        ..Default::default()
    };
    let err = PublishTarget::resolve(&spec, &StoreSettings::default(), None).unwrap_err();
    let msg = err.to_string();
    for name in [
        "HYOPS_VYOS_GCS_SA_JSON",
        "HYOPS_VYOS_GCS_SA_JSON_FILE",
        "gcs_credentials",
    ] {
        assert!(msg.contains(name), "{msg}");
    }
}

#[test]
fn credential_precedence_and_errors_name_the_source_never_the_content() {
    let dir = tempfile::tempdir().unwrap();
    let key = gen_key(dir.path(), "k");
    let good = serde_json::json!({
        "type": "service_account", "client_email": "a@b.iam", "private_key": key.pem,
        "token_uri": "http://127.0.0.1:9/token"
    })
    .to_string();
    let file = dir.path().join("sa.json");
    std::fs::write(&file, "{\n  \"client_email\": \"x\",\n  oops").unwrap();
    // Inline wins over the (broken) file.
    let inputs = CredentialInputs {
        inline: Some(SecretString::from(good.clone())),
        file: Some(file.clone()),
        ..Default::default()
    };
    let sa = inputs.resolve().unwrap();
    assert_eq!(sa.source(), &CredentialSource::Inline);
    let shown = format!("{sa:?} {sa}");
    assert!(!shown.contains(key_body(&key.pem)), "{shown}");
    // The file is next in line and is reported by position.
    let inputs = CredentialInputs {
        file: Some(file.clone()),
        env_json: Some(SecretString::from(good)),
        ..Default::default()
    };
    let err = inputs.resolve().unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("gcs_credentials_file"), "{msg}");
    assert!(msg.contains("not JSON at line 3"), "{msg}");
    assert!(!msg.contains("oops"), "{msg}");
    // A PKCS#1 key cannot sign as a service-account key: clear error, no key text.
    let pkcs1 = std::process::Command::new("openssl")
        .args(["genrsa", "-traditional", "1024"])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let pkcs1 = String::from_utf8(pkcs1.stdout).unwrap();
    assert!(pkcs1.contains("BEGIN RSA PRIVATE KEY"));
    let err = GcsServiceAccount::parse(
        SecretString::from(
            serde_json::json!({"client_email": "a@b", "private_key": pkcs1}).to_string(),
        ),
        CredentialSource::Env,
    )
    .unwrap_err();
    assert!(matches!(err, CredentialError::BadKey { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("PKCS#1") && msg.contains("HYOPS_VYOS_GCS_SA_JSON"),
        "{msg}"
    );
    assert!(!msg.contains(key_body(&pkcs1)), "{msg}");
}

#[tokio::test]
async fn secrets_never_reach_logs_errors_argv_or_child_environment() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    let capture = LogCapture::default();
    let _guard = capture.install();
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = tempfile::tempdir().unwrap();
        let secret_marker = key_body(&stack.key.pem).to_owned();
        let files = vec![make_file(work.path(), "s.qcow2", "qcow2", 400_000, 5)];

        // A successful GCS publish and a refused one, both logged at TRACE.
        let target =
            PublishTarget::resolve(&stack.spec("secret/"), &stack.settings(), None).unwrap();
        publish(&target, &files, &meta("3.0"), &CancellationToken::new())
            .await
            .unwrap();
        let wrong = gen_key(stack.dir.path(), "w2");
        let bad_target = PublishTarget::resolve(
            &stack.spec("secret2/"),
            &stack.settings_with(&wrong.pem),
            None,
        )
        .unwrap();
        let err = publish(&bad_target, &files, &meta("3.0"), &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(!format!("{err} {err:?}").contains(key_body(&wrong.pem)));

        // A publish command gets the credential only as a 0600 file path.
        let out = work.path().join("cmd-out");
        std::fs::create_dir(&out).unwrap();
        let command = format!(
            r#"set -e
O={out}
cp /proc/$$/cmdline "$O/cmdline"
cp /proc/$$/environ "$O/environ"
stat -c %a "$HYOPS_VYOS_GCS_SA_JSON_FILE" > "$O/mode"
stat -c %a "$(dirname "$HYOPS_VYOS_GCS_SA_JSON_FILE")" > "$O/dirmode"
printf %s "$HYOPS_VYOS_GCS_SA_JSON_FILE" > "$O/path"
sha256sum < "$HYOPS_VYOS_GCS_SA_JSON_FILE" | cut -d' ' -f1 > "$O/sha"
printf %s "${{HYOPS_VYOS_GCS_SA_JSON:-unset}}" > "$O/inline"
cp "$HYOPS_VYOS_ARTIFACT_LOCAL_PATH" "$O/published.qcow2"
echo "log line on stderr" >&2
echo "file://$O/published.qcow2""#,
            out = out.display()
        );
        let spec = PublishSpec {
            command: Some(command),
            ..Default::default()
        };
        let mut cmd_target = PublishTarget::resolve(&spec, &stack.settings(), None).unwrap();
        isolate_home(&mut cmd_target, work.path());
        // Even if a caller put the JSON into the command environment, it is filtered out.
        cmd_target.command_env.insert(
            "HYOPS_VYOS_GCS_SA_JSON".into(),
            stack.sa_json(&stack.key.pem),
        );
        let set = publish(&cmd_target, &files, &meta("3.0"), &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(
            set.files[0].url,
            format!("file://{}/published.qcow2", out.display())
        );

        let read = |n: &str| std::fs::read(out.join(n)).unwrap();
        let contains =
            |hay: &[u8], needle: &str| hay.windows(needle.len()).any(|w| w == needle.as_bytes());
        assert!(!contains(&read("cmdline"), &secret_marker), "key in argv");
        assert!(
            !contains(&read("environ"), &secret_marker),
            "key in child env"
        );
        assert!(
            !contains(&read("environ"), "PRIVATE KEY"),
            "key in child env"
        );
        assert_eq!(String::from_utf8(read("inline")).unwrap(), "unset");
        assert_eq!(String::from_utf8(read("mode")).unwrap().trim(), "600");
        assert_eq!(String::from_utf8(read("dirmode")).unwrap().trim(), "700");
        let expected_sha = hex::encode(Sha256::digest(stack.sa_json(&stack.key.pem)));
        assert_eq!(String::from_utf8(read("sha")).unwrap().trim(), expected_sha);
        let secret_path = PathBuf::from(String::from_utf8(read("path")).unwrap());
        assert!(!secret_path.exists(), "secret file left behind");
        assert!(
            !secret_path.parent().unwrap().exists(),
            "secret dir left behind"
        );

        // A failing command also removes the file.
        let spec = PublishSpec {
            command: Some(format!(
                "printf %s \"$HYOPS_VYOS_GCS_SA_JSON_FILE\" > {}/path2; echo boom >&2; exit 3",
                out.display()
            )),
            ..Default::default()
        };
        let mut t = PublishTarget::resolve(&spec, &stack.settings(), None).unwrap();
        isolate_home(&mut t, work.path());
        let err = publish(&t, &files, &meta("3.0"), &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("boom"), "{err}");
        let p2 = PathBuf::from(std::fs::read_to_string(out.join("path2")).unwrap());
        assert!(!p2.exists() && !p2.parent().unwrap().exists());
    })
    .await
    .expect("test timed out");
    let logs = capture.text();
    assert!(
        logs.contains("uploaded and verified"),
        "capture works: {logs}"
    );
    assert!(
        !logs.contains(key_body(&stack.key.pem)),
        "private key in logs"
    );
    assert!(!logs.contains("upload_id"), "session URI in logs");
}

#[tokio::test]
async fn cancelled_publish_command_is_killed_and_its_secret_removed() {
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = tempfile::tempdir().unwrap();
        let keydir = tempfile::tempdir().unwrap();
        let key = gen_key(keydir.path(), "c");
        let files = vec![make_file(work.path(), "c.qcow2", "qcow2", 1000, 9)];
        let out = work.path();
        let spec = PublishSpec {
            command: Some(format!(
                "printf %s \"$HYOPS_VYOS_GCS_SA_JSON_FILE\" > {o}/path; sleep 60 & echo $! > {o}/bgpid; \
                 touch {o}/started; wait",
                o = out.display()
            )),
            ..Default::default()
        };
        let settings = StoreSettings {
            credentials: CredentialInputs {
                inline: Some(SecretString::from(
                    serde_json::json!({"client_email": "a@b", "private_key": key.pem}).to_string(),
                )),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut target = PublishTarget::resolve(&spec, &settings, None).unwrap();
        isolate_home(&mut target, work.path());
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        let started = out.join("started");
        tokio::spawn(async move {
            while !started.exists() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            c2.cancel();
        });
        let err = publish(&target, &files, &meta("1"), &cancel).await.unwrap_err();
        assert!(matches!(err, PublishError::Cancelled), "{err:?}");
        let p = PathBuf::from(std::fs::read_to_string(out.join("path")).unwrap());
        assert!(!p.exists() && !p.parent().unwrap().exists(), "secret left after cancel");
        let bg: i32 = std::fs::read_to_string(out.join("bgpid")).unwrap().trim().parse().unwrap();
        // The whole process group was killed, background children included.
        let mut alive = true;
        for _ in 0..100 {
            alive = Path::new(&format!("/proc/{bg}")).exists()
                && !std::fs::read_to_string(format!("/proc/{bg}/stat"))
                    .map(|s| s.contains(") Z "))
                    .unwrap_or(true);
            if !alive {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!alive, "background child {bg} survived cancellation");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn publish_command_must_print_exactly_one_url() {
    let work = tempfile::tempdir().unwrap();
    let files = vec![make_file(work.path(), "u.qcow2", "qcow2", 1000, 4)];
    for (cmd, expect) in [
        ("echo one; echo two", "exactly one URL"),
        ("true", "printed nothing"),
        ("echo not-a-url", "not a URL"),
    ] {
        let spec = PublishSpec {
            command: Some(cmd.into()),
            ..Default::default()
        };
        let mut t = PublishTarget::resolve(&spec, &StoreSettings::default(), None).unwrap();
        isolate_home(&mut t, work.path());
        let err = publish(&t, &files, &meta("1"), &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(err.to_string().contains(expect), "{cmd}: {err}");
    }
}
