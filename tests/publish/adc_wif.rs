//! Workload Identity Federation (`external_account`): file-, URL- and executable-sourced subject
//! tokens exchanged at the STS fake (which checks subject token, type and audience), with and
//! without service-account impersonation; each publishes to the GCS stack without leaking.

use crate::adc::*;
use crate::support::*;

#[tokio::test]
async fn external_account_file_subject_token_is_exchanged_at_sts_then_impersonated() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let audience = "//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/gh/providers/gh";
        let subject = "eyJhbGciOiJSUzI1NiJ9.c3ViamVjdA.sig-Wif7";
        let target = "publisher@hyops-test.iam.gserviceaccount.com";
        stack
            .control(serde_json::json!({"fakes": {
                "sts": {"audience": audience, "subject_token": subject,
                        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt"},
                "iam": {"target": target, "source_kinds": ["sts"]}}}))
            .await;
        let subject_file = stack.dir.path().join("oidc-token");
        std::fs::write(&subject_file, format!("{subject}\n")).unwrap();
        let wif = |aud: &str| {
            serde_json::json!({
                "type": "external_account",
                "audience": aud,
                "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                "token_url": format!("{}/sts/v1/token", stack.base()),
                "service_account_impersonation_url": format!(
                    "{}/v1/projects/-/serviceAccounts/{target}:generateAccessToken", stack.base()),
                "credential_source": {"file": subject_file},
            })
        };
        let file = write_secret_file(stack.dir.path(), "wif.json", &wif(audience));
        publishes_with(
            &stack,
            &adc_settings(&stack, gac(&file)),
            "wif/",
            "impersonated",
            &[subject],
        )
        .await;
        assert!(stack.stat("iam_source_sts").await >= 1);
        assert_eq!(stack.stat("authorized_sts").await, 0, "federated token used directly");

        // The wrong audience is refused by STS, and the error names the field, not the token.
        let bad = write_secret_file(stack.dir.path(), "wif-bad.json", &wif("//other/pool"));
        let mut t = PublishTarget::resolve(&stack.spec("wif2/"), &adc_settings(&stack, gac(&bad)), None)
            .unwrap();
        let err = t.check_credential().await.unwrap_err().to_string();
        assert!(err.contains("bad audience"), "{err}");
        assert!(!err.contains(subject), "{err}");
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn external_account_url_subject_token_like_github_actions_publishes_with_the_sts_token() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let audience =
            "//iam.googleapis.com/projects/9/locations/global/workloadIdentityPools/p/providers/q";
        let subject = "oidc-subject-Url3";
        let request_token = "actions-request-Rt5";
        stack
            .control(serde_json::json!({"fakes": {
                "sts": {"audience": audience, "subject_token": subject,
                        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt"},
                "oidc": {"request_token": request_token, "token": subject}}}))
            .await;
        let file = write_secret_file(
            stack.dir.path(),
            "wif-url.json",
            &serde_json::json!({
                "type": "external_account",
                "audience": audience,
                "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                "token_url": format!("{}/sts/v1/token", stack.base()),
                "credential_source": {
                    "url": format!("{}/oidc/token?audience=gcp", stack.base()),
                    "headers": {"Authorization": format!("Bearer {request_token}")},
                    "format": {"type": "json", "subject_token_field_name": "value"}
                },
            }),
        );
        publishes_with(
            &stack,
            &adc_settings(&stack, gac(&file)),
            "wif-url/",
            "sts",
            &[subject, request_token],
        )
        .await;
        assert!(stack.stat("oidc_ok").await >= 1);
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn external_account_executable_runs_only_when_allowed_and_gets_no_secrets() {
    let Some(stack) = GcsStack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let audience = "//iam.googleapis.com/locations/global/workforcePools/w/providers/x";
        let subject = "exec-subject-Ex9";
        stack
            .control(serde_json::json!({"fakes": {
                "sts": {"audience": audience, "subject_token": subject,
                        "subject_token_type": "urn:ietf:params:oauth:token-type:id_token"}}}))
            .await;
        let dir = stack.dir.path();
        let script = dir.join("token-exec.sh");
        let env_out = dir.join("exec-environ");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\ncp /proc/$$/environ {env}\nprintf '{{\"version\":1,\"success\":true,\
                 \"token_type\":\"urn:ietf:params:oauth:token-type:id_token\",\"id_token\":\"{subject}\",\
                 \"expiration_time\":%s}}' $(( $(date +%s) + 600 ))\n",
                env = env_out.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = write_secret_file(
            dir,
            "wif-exec.json",
            &serde_json::json!({
                "type": "external_account",
                "audience": audience,
                "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
                "token_url": format!("{}/sts/v1/token", stack.base()),
                "credential_source": {"executable": {"command": format!("{} --flag", script.display()),
                                                      "timeout_millis": 10000}},
            }),
        );
        // Google's rule: executables need GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1.
        let mut t = PublishTarget::resolve(&stack.spec("exec0/"), &adc_settings(&stack, gac(&file)), None)
            .unwrap();
        let err = t.check_credential().await.unwrap_err().to_string();
        assert!(err.contains("GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1"), "{err}");
        assert!(!env_out.exists(), "the executable ran although not allowed");

        let mut adc = gac(&file);
        adc.allow_executables = true;
        publishes_with(&stack, &adc_settings(&stack, adc), "exec/", "sts", &[subject]).await;
        let environ = String::from_utf8_lossy(&std::fs::read(&env_out).unwrap()).into_owned();
        assert!(
            environ.contains(&format!("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE={audience}")),
            "{environ}"
        );
        assert!(environ.contains("GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE=0"));
        for t in issued(&stack).await {
            assert!(!environ.contains(&t), "an access token reached the executable");
        }

        // With an output_file holding an unexpired answer, the executable is not run again
        // (here it would fail) and the cached subject token is used.
        let cached = dir.join("exec-cache.json");
        let later = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 600;
        std::fs::write(
            &cached,
            serde_json::json!({"version": 1, "success": true,
                "token_type": "urn:ietf:params:oauth:token-type:id_token",
                "id_token": subject, "expiration_time": later})
            .to_string(),
        )
        .unwrap();
        let failing = dir.join("failing-exec.sh");
        std::fs::write(&failing, "#!/bin/sh\nexit 7\n").unwrap();
        std::fs::set_permissions(&failing, std::fs::Permissions::from_mode(0o755)).unwrap();
        let with_cache = |out: &Path| {
            serde_json::json!({
                "type": "external_account",
                "audience": audience,
                "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
                "token_url": format!("{}/sts/v1/token", stack.base()),
                "credential_source": {"executable": {"command": failing.display().to_string(),
                                                      "output_file": out}},
            })
        };
        let mut adc = gac(&write_secret_file(dir, "wif-cached.json", &with_cache(&cached)));
        adc.allow_executables = true;
        let mut t = PublishTarget::resolve(&stack.spec("exec2/"), &adc_settings(&stack, adc), None)
            .unwrap();
        t.check_credential().await.unwrap();
        // Without a usable cache the failing executable's status is reported, nothing else.
        let mut adc = gac(&write_secret_file(
            dir,
            "wif-nocache.json",
            &with_cache(&dir.join("absent.json")),
        ));
        adc.allow_executables = true;
        let mut t = PublishTarget::resolve(&stack.spec("exec3/"), &adc_settings(&stack, adc), None)
            .unwrap();
        let err = t.check_credential().await.unwrap_err().to_string();
        assert!(err.contains("exit status: 7"), "{err}");
        assert!(err.contains("output withheld"), "{err}");
    })
    .await
    .expect("test timed out");
}
