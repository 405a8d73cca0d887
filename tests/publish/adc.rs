//! Google credentials beyond a key: every Application Default Credentials kind, provider
//! impersonation, the metadata server and the "no credential" report, each against loopback fakes
//! in the GCS stack that verify what they receive, each publishing to the stack and leaving no
//! credential bytes in logs, the manifest or a child process.

use crate::support::*;
pub(crate) use hyops::engine::credentials::AdcInputs;

/// Settings whose only credential source is what `adc` and `tweak` describe.
pub(crate) fn adc_settings(stack: &GcsStack, adc: AdcInputs) -> StoreSettings {
    StoreSettings {
        credentials: CredentialInputs {
            adc,
            ..Default::default()
        },
        gcs_endpoint: Some(stack.base()),
        retry: fast_retry(),
        gcs_chunk_size: Some(256 * 1024),
        ..Default::default()
    }
}

/// ADC inputs naming `file` as GOOGLE_APPLICATION_CREDENTIALS, no gcloud file, no metadata.
pub(crate) fn gac(file: &Path) -> AdcInputs {
    AdcInputs {
        application_credentials: Some(file.to_path_buf()),
        gcloud_adc_file: Some(PathBuf::from("/nonexistent/gcloud/adc.json")),
        metadata_host: None,
        allow_executables: false,
    }
}

pub(crate) fn write_secret_file(dir: &Path, name: &str, v: &serde_json::Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, v.to_string()).unwrap();
    p
}

/// Every token the stack issued so far.
pub(crate) async fn issued(stack: &GcsStack) -> Vec<String> {
    reqwest::get(format!("{}/__tokens", stack.base()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Publishes one file with `settings`, asserts the stack authorized it with a token of `kind`,
/// and that neither the logs nor the manifest hold any of `secrets` or any issued token.
pub(crate) async fn publishes_with(
    stack: &GcsStack,
    settings: &StoreSettings,
    prefix: &str,
    kind: &str,
    secrets: &[&str],
) {
    let capture = LogCapture::default();
    let _guard = capture.install();
    let work = tempfile::tempdir().unwrap();
    let files = vec![make_file(work.path(), "a.qcow2", "qcow2", 300_000, 7)];
    let target = PublishTarget::resolve(&stack.spec(prefix), settings, None).unwrap();
    let set = publish(&target, &files, &meta("1.0"), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(set.uploaded, 1);
    let stored = stack.read_object(&set.files[0].object).await;
    assert_eq!(stored.len() as u64, files[0].size);
    assert!(
        stack.stat(&format!("authorized_{kind}")).await > 0,
        "storage was not reached with a {kind} token: {}",
        stack.stats().await
    );
    let logs = capture.text();
    assert!(logs.contains("requesting access token"), "capture works");
    let manifest = serde_json::to_string(&set.manifest).unwrap();
    let tokens = issued(stack).await;
    assert!(!tokens.is_empty());
    for s in secrets
        .iter()
        .copied()
        .chain(tokens.iter().map(String::as_str))
    {
        assert!(!logs.contains(s), "a credential reached the logs");
        assert!(!manifest.contains(s), "a credential reached the manifest");
    }
}

#[tokio::test]
async fn authorized_user_file_refreshes_with_client_id_and_secret_and_publishes() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let (cid, secret, refresh) = ("hyops-cli.apps", "cs-Zq81secret", "1//rt-Lk2refresh");
        stack
            .control(serde_json::json!({"fakes": {"user": {
                "client_id": cid, "client_secret": secret, "refresh_token": refresh}}}))
            .await;
        let file = write_secret_file(
            stack.dir.path(),
            "user.json",
            &serde_json::json!({"type": "authorized_user", "client_id": cid,
                "client_secret": secret, "refresh_token": refresh,
                "token_uri": format!("{}/token", stack.base())}),
        );
        publishes_with(
            &stack,
            &adc_settings(&stack, gac(&file)),
            "user/",
            "user",
            &[secret, refresh],
        )
        .await;

        // A wrong client secret is refused by the endpoint; the error says so without values.
        let wrong = write_secret_file(
            stack.dir.path(),
            "user-wrong.json",
            &serde_json::json!({"type": "authorized_user", "client_id": cid,
                "client_secret": "not-the-secret", "refresh_token": refresh,
                "token_uri": format!("{}/token", stack.base())}),
        );
        let mut t = PublishTarget::resolve(
            &stack.spec("user2/"),
            &adc_settings(&stack, gac(&wrong)),
            None,
        )
        .unwrap();
        let err = t.check_credential().await.unwrap_err().to_string();
        assert!(err.contains("invalid_client"), "{err}");
        assert!(err.contains("GOOGLE_APPLICATION_CREDENTIALS"), "{err}");
        assert!(
            !err.contains("not-the-secret") && !err.contains(refresh),
            "{err}"
        );
        assert!(stack.stat("user_denied").await >= 1);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn impersonated_service_account_file_calls_iam_credentials_with_its_source() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let (cid, secret, refresh) = ("imp.apps", "imp-secret-Is4", "1//imp-refresh-Ir6");
        let target = "builder@hyops-test.iam.gserviceaccount.com";
        stack
            .control(serde_json::json!({"fakes": {
                "user": {"client_id": cid, "client_secret": secret, "refresh_token": refresh},
                "iam": {"target": target, "source_kinds": ["user"]}}}))
            .await;
        let file = write_secret_file(
            stack.dir.path(),
            "imp.json",
            &serde_json::json!({
                "type": "impersonated_service_account",
                "service_account_impersonation_url": format!(
                    "{}/v1/projects/-/serviceAccounts/{target}:generateAccessToken", stack.base()),
                "delegates": [],
                "source_credentials": {"type": "authorized_user", "client_id": cid,
                    "client_secret": secret, "refresh_token": refresh,
                    "token_uri": format!("{}/token", stack.base())},
            }),
        );
        publishes_with(
            &stack,
            &adc_settings(&stack, gac(&file)),
            "imp/",
            "impersonated",
            &[secret, refresh],
        )
        .await;
        assert!(stack.stat("iam_source_user").await >= 1);
        assert_eq!(stack.stat("authorized_user").await, 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn provider_impersonation_mints_tokens_on_top_of_a_key_and_checks_the_target() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let target = "release@hyops-test.iam.gserviceaccount.com";
        stack
            .control(
                serde_json::json!({"fakes": {"iam": {"target": target, "source_kinds": ["key"]}}}),
            )
            .await;
        let mut settings = stack.settings();
        settings.credentials.impersonate = Some(target.into());
        settings.credentials.iam_endpoint = Some(stack.base());
        publishes_with(
            &stack,
            &settings,
            "pimp/",
            "impersonated",
            &[key_body(&stack.key.pem)],
        )
        .await;
        assert!(stack.stat("iam_source_key").await >= 1);
        assert_eq!(
            stack.stat("authorized_key").await,
            0,
            "the key's own token was used"
        );

        // The IAM fake refuses another target; the diagnostic names the account.
        settings.credentials.impersonate = Some("nobody@hyops-test.iam.gserviceaccount.com".into());
        let mut t = PublishTarget::resolve(&stack.spec("pimp2/"), &settings, None).unwrap();
        let err = t.check_credential().await.unwrap_err().to_string();
        assert!(err.contains("nobody@hyops-test"), "{err}");
        assert!(err.contains("403"), "{err}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn metadata_server_is_asked_with_metadata_flavor_and_its_token_publishes() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        // The fake really requires the header.
        let url = format!(
            "{}/computeMetadata/v1/instance/service-accounts/default/token",
            stack.base()
        );
        assert_eq!(reqwest::get(&url).await.unwrap().status().as_u16(), 403);
        let adc = AdcInputs {
            application_credentials: None,
            gcloud_adc_file: Some(stack.dir.path().join("no-gcloud.json")),
            metadata_host: Some(format!("127.0.0.1:{}", stack.port)),
            allow_executables: false,
        };
        publishes_with(&stack, &adc_settings(&stack, adc), "md/", "metadata", &[]).await;
        assert_eq!(
            stack.stat("metadata_denied").await,
            1,
            "only the probe above"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn gcloud_adc_file_is_used_when_no_earlier_source_is_set() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let (cid, secret, refresh) = ("gcloud.apps", "gc-secret-Gs2", "1//gc-refresh-Gr8");
        stack
            .control(serde_json::json!({"fakes": {"user": {
                "client_id": cid, "client_secret": secret, "refresh_token": refresh}}}))
            .await;
        let file = write_secret_file(
            stack.dir.path(),
            "application_default_credentials.json",
            &serde_json::json!({"type": "authorized_user", "client_id": cid,
                "client_secret": secret, "refresh_token": refresh,
                "token_uri": format!("{}/token", stack.base())}),
        );
        // A metadata server that is there must not be asked: the gcloud file comes first.
        let adc = AdcInputs {
            application_credentials: None,
            gcloud_adc_file: Some(file),
            metadata_host: Some(format!("127.0.0.1:{}", stack.port)),
            allow_executables: false,
        };
        publishes_with(
            &stack,
            &adc_settings(&stack, adc),
            "gc/",
            "user",
            &[secret, refresh],
        )
        .await;
        assert_eq!(stack.stat("metadata_token_ok").await, 0);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn publish_command_gets_a_short_lived_access_token_file_for_a_non_key_source() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let work = tempfile::tempdir().unwrap();
        let out = work.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let files = vec![make_file(work.path(), "c.qcow2", "qcow2", 5_000, 4)];
        let command = format!(
            r#"set -e
O={out}
cp /proc/$$/cmdline "$O/cmdline"
cp /proc/$$/environ "$O/environ"
stat -c %a "$HYOPS_VYOS_GCS_ACCESS_TOKEN_FILE" > "$O/mode"
printf %s "$HYOPS_VYOS_GCS_ACCESS_TOKEN_FILE" > "$O/path"
cp "$HYOPS_VYOS_GCS_ACCESS_TOKEN_FILE" "$O/token"
printf %s "$HYOPS_VYOS_GCS_CREDENTIAL_TYPE" > "$O/type"
printf %s "$HYOPS_VYOS_GCS_ACCESS_TOKEN_EXPIRES_AT" > "$O/expires"
printf %s "${{HYOPS_VYOS_GCS_SA_JSON_FILE:-unset}}" > "$O/sa"
cp "$HYOPS_VYOS_ARTIFACT_LOCAL_PATH" "$O/published.qcow2"
echo "file://$O/published.qcow2""#,
            out = out.display()
        );
        let adc = AdcInputs {
            application_credentials: None,
            gcloud_adc_file: None,
            metadata_host: Some(format!("127.0.0.1:{}", stack.port)),
            allow_executables: false,
        };
        let spec = PublishSpec {
            command: Some(command),
            backend: Some(Backend::Gcs),
            bucket: Some(BUCKET.into()),
            ..Default::default()
        };
        let mut t = PublishTarget::resolve(&spec, &adc_settings(&stack, adc), None).unwrap();
        isolate_home(&mut t, work.path());
        publish(&t, &files, &meta("1.0"), &CancellationToken::new())
            .await
            .unwrap();
        let read = |n: &str| std::fs::read_to_string(out.join(n)).unwrap();
        assert_eq!(read("mode").trim(), "600");
        assert_eq!(read("type"), "access_token");
        assert_eq!(read("sa"), "unset");
        assert!(read("expires").ends_with('Z') && read("expires").contains('T'));
        let token = read("token");
        assert!(!token.contains('\n'), "the file holds the token alone");
        assert!(issued(&stack).await.contains(&token), "not an issued token");
        // The token works as a bearer token against the store.
        let r = reqwest::Client::new()
            .get(format!("{}/storage/v1/b/{BUCKET}/o", stack.base()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        for n in ["cmdline", "environ"] {
            assert!(!read(n).contains(&token), "token in the command's {n}");
        }
        let path = PathBuf::from(read("path"));
        assert!(
            !path.exists() && !path.parent().unwrap().exists(),
            "token file left behind"
        );
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn missing_credential_lists_every_source_tried_in_order() {
    // The metadata server is the last step: an unreachable one ends the walk.
    let closed = free_port();
    let gcloud = tempfile::tempdir().unwrap();
    let settings = StoreSettings {
        credentials: CredentialInputs {
            adc: AdcInputs {
                application_credentials: None,
                gcloud_adc_file: Some(gcloud.path().join("application_default_credentials.json")),
                metadata_host: Some(format!("127.0.0.1:{closed}")),
                allow_executables: false,
            },
            ..Default::default()
        },
        ..Default::default()
    };
    let spec = PublishSpec {
        backend: Some(Backend::Gcs),
        bucket: Some("some-bucket".into()),
        ..Default::default()
    };
    let mut t = PublishTarget::resolve(&spec, &settings, None).unwrap();
    let err = tokio::time::timeout(TEST_TIMEOUT, t.check_credential())
        .await
        .expect("bounded")
        .unwrap_err();
    let msg = err.to_string();
    let order = [
        "gcs_credentials_wo",
        "provider gcs_credentials:",
        "provider gcs_credentials_file",
        "env HYOPS_VYOS_GCS_SA_JSON:",
        "env HYOPS_VYOS_GCS_SA_JSON_FILE",
        "env GOOGLE_APPLICATION_CREDENTIALS",
        "gcloud ADC file",
        "metadata server at http://127.0.0.1",
    ];
    let mut at = 0;
    for (i, name) in order.iter().enumerate() {
        let found = msg[at..]
            .find(name)
            .unwrap_or_else(|| panic!("{name} missing or out of order in: {msg}"));
        at += found;
        assert!(msg[..at].contains(&format!("{}. ", i + 1)), "{msg}");
    }
    assert!(msg.contains("not reachable"), "{msg}");
    assert!(msg.contains(&gcloud.path().display().to_string()), "{msg}");

    // With NO_GCE_CHECK the walk ends before any network, at resolve time.
    let mut s2 = settings.clone();
    s2.credentials.adc.metadata_host = None;
    let msg = PublishTarget::resolve(&spec, &s2, None)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("8. metadata server: skipped (NO_GCE_CHECK"),
        "{msg}"
    );
}

#[test]
fn precedence_picks_the_first_set_source_and_a_broken_one_is_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let key = gen_key(dir.path(), "p");
    let sa = serde_json::json!({"type": "service_account", "client_email": "k@p.iam",
        "private_key": key.pem, "token_uri": "http://127.0.0.1:9/token"});
    let user = |id: &str| {
        serde_json::json!({"type": "authorized_user", "client_id": id,
            "client_secret": "s", "refresh_token": "r", "token_uri": "http://127.0.0.1:9/token"})
    };
    let gac_file = write_secret_file(dir.path(), "gac.json", &user("from-gac"));
    let gcloud_file = write_secret_file(dir.path(), "gcloud.json", &user("from-gcloud"));
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{ \"type\": \"authorized_user\", oops").unwrap();
    let adc = |gac: Option<&Path>| AdcInputs {
        application_credentials: gac.map(Path::to_path_buf),
        gcloud_adc_file: Some(gcloud_file.clone()),
        metadata_host: Some("127.0.0.1:9".into()),
        allow_executables: false,
    };
    let shown = |inputs: CredentialInputs| inputs.resolve_gcs().map(|c| c.to_string());
    let cases: Vec<(&str, CredentialInputs, Result<&str, &str>)> = vec![
        (
            "env JSON beats ADC",
            CredentialInputs {
                env_json: Some(SecretString::from(sa.to_string())),
                adc: adc(Some(&gac_file)),
                ..Default::default()
            },
            Ok("service account k@p.iam (from env HYOPS_VYOS_GCS_SA_JSON)"),
        ),
        (
            "GOOGLE_APPLICATION_CREDENTIALS beats gcloud's file",
            CredentialInputs {
                adc: adc(Some(&gac_file)),
                ..Default::default()
            },
            Ok("client from-gac, from env GOOGLE_APPLICATION_CREDENTIALS"),
        ),
        (
            "gcloud's file beats the metadata server",
            CredentialInputs {
                adc: adc(None),
                ..Default::default()
            },
            Ok("client from-gcloud, from gcloud ADC file"),
        ),
        (
            "a broken GOOGLE_APPLICATION_CREDENTIALS is an error, not skipped",
            CredentialInputs {
                adc: adc(Some(&broken)),
                ..Default::default()
            },
            Err("GOOGLE_APPLICATION_CREDENTIALS"),
        ),
        (
            "an unsupported kind is named",
            CredentialInputs {
                inline: Some(SecretString::from(r#"{"type":"gdch_service_account"}"#)),
                ..Default::default()
            },
            Err("\"gdch_service_account\" is not supported"),
        ),
        (
            "impersonation wraps whatever was found",
            CredentialInputs {
                adc: adc(None),
                impersonate: Some("t@p.iam.gserviceaccount.com".into()),
                ..Default::default()
            },
            Ok("service account t@p.iam.gserviceaccount.com impersonated by authorized_user (client from-gcloud"),
        ),
    ];
    for (what, inputs, want) in cases {
        match (shown(inputs), want) {
            (Ok(got), Ok(w)) => assert!(got.contains(w), "{what}: {got}"),
            (Err(e), Err(w)) => {
                let msg = e.to_string();
                assert!(msg.contains(w), "{what}: {msg}");
                assert!(!msg.contains("oops"), "{what}: content in error: {msg}");
            }
            (got, _) => panic!("{what}: unexpected {:?}", got.map_err(|e| e.to_string())),
        }
    }
}
