//! Smoke verify: the default qemu-img gate and the command override.

use super::*;

#[tokio::test]
async fn smoke_verify_default_gate_and_command_override() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let good = dir.path().join("good.qcow2");
    let tiny = dir.path().join("tiny.qcow2");
    for (p, size) in [(&good, "2G"), (&tiny, "64M")] {
        let st = std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(p)
            .arg(size)
            .status()
            .unwrap();
        assert!(st.success());
    }
    let env = BTreeMap::new();
    let default = SmokeVerifySpec::default();
    let req = |image: &Path, smoke: &SmokeVerifySpec| -> VerifyOutcomeFuture {
        let image = image.to_owned();
        let smoke = smoke.clone();
        let env = env.clone();
        let work = dir.path().to_owned();
        let log = log.clone();
        Box::pin(async move {
            smoke_verify(
                &VerifyRequest {
                    image: &image,
                    smoke: &smoke,
                    boot: None,
                    env: &env,
                    workdir: &work,
                    log_path: &log,
                    console_log: &work.join("console.log"),
                },
                &CancellationToken::new(),
            )
            .await
        })
    };
    let ok = req(&good, &default).await.unwrap();
    assert_eq!(ok.detected_format.as_deref(), Some("qcow2"));
    assert_eq!(ok.virtual_size, Some(2 << 30));

    let err = req(&tiny, &default).await.unwrap_err();
    assert!(matches!(err, VerifyError::Refused { .. }));
    assert!(err.to_string().contains("virtual size"), "{err}");

    let failing = SmokeVerifySpec {
        command: Some("echo verify-said-no >&2; exit 1".into()),
        required: true,
        boot: None,
    };
    let err = req(&good, &failing).await.unwrap_err();
    assert!(err.to_string().contains("verify-said-no"), "{err}");

    let optional = SmokeVerifySpec {
        required: false,
        ..failing
    };
    let warned = req(&good, &optional).await.unwrap();
    assert!(
        warned.warnings[0].contains("not required"),
        "{:?}",
        warned.warnings
    );
}

type VerifyOutcomeFuture = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<hyops::engine::verify::VerifyOutcome, VerifyError>>,
    >,
>;

/// `smoke_verify.boot` defaults follow the build (issue #10): on for packer and vyos-vm-images,
/// off for command; a login prompt is expected on a serial console; the agent and cloud-init
/// follow `build.guest_agent` / `build.cloud_init`; bad values are reported at their attribute.
#[test]
fn boot_settings_follow_the_build_and_report_bad_values_at_their_attribute() {
    use hyops::engine::build::BuildSettings;
    use hyops::engine::spec::{BootVerifySpec, Console};
    use hyops::engine::validate::validate_spec;
    use hyops::engine::verify::boot::{BootSettings, DEFAULT_BOOT_TIMEOUT, LOGIN_PROMPT};
    let env = EngineEnv::from_env()
        .with_build_method(None)
        .with_build_command(None)
        .with_allow_tcg(false);
    let build = |method: BuildMethod, console: Console| BuildSpec {
        method: Some(method),
        command: Some("true".into()),
        console: Some(console),
        ..BuildSpec::default()
    };
    let smoke = SmokeVerifySpec::default();

    let packer =
        BuildSettings::resolve(&build(BuildMethod::Packer, Console::Serial), &env).unwrap();
    let b = BootSettings::resolve(&smoke, &packer)
        .unwrap()
        .expect("on for packer");
    assert_eq!(b.timeout, DEFAULT_BOOT_TIMEOUT);
    assert_eq!(b.memory_mb, 1024);
    assert!(b.guest_agent && b.cloud_init);
    assert_eq!(b.expect.len(), 1);
    assert_eq!(b.expect[0].as_str(), LOGIN_PROMPT);
    assert!(b.expect[0].is_match("Welcome\nvyos login: "));
    assert!(b
        .fail_on
        .iter()
        .any(|r| r.is_match("Kernel panic - not syncing: VFS")));
    assert!(b.fail_on.iter().any(|r| r.is_match("No bootable device.")));

    let kvm_console =
        BuildSettings::resolve(&build(BuildMethod::VyosVmImages, Console::Kvm), &env).unwrap();
    let b = BootSettings::resolve(&smoke, &kvm_console)
        .unwrap()
        .expect("on for vyos-vm-images");
    assert!(
        b.expect.is_empty(),
        "no login prompt expected off a serial console"
    );

    let command =
        BuildSettings::resolve(&build(BuildMethod::Command, Console::Serial), &env).unwrap();
    assert!(BootSettings::resolve(&smoke, &command).unwrap().is_none());

    let bad = |boot: BootVerifySpec| SmokeVerifySpec {
        boot: Some(boot),
        ..SmokeVerifySpec::default()
    };
    let e = BootSettings::resolve(
        &bad(BootVerifySpec {
            timeout: Some("5 minutes".into()),
            ..Default::default()
        }),
        &packer,
    )
    .unwrap_err();
    assert_eq!(e.field, "timeout");
    let e = BootSettings::resolve(
        &bad(BootVerifySpec {
            fail_on: Some(vec!["(".into()]),
            ..Default::default()
        }),
        &packer,
    )
    .unwrap_err();
    assert_eq!(e.field, "fail_on");

    let spec: ImageSpec = serde_json::from_value(serde_json::json!({
        "artifact_key": "vyos-x",
        "source_iso_url": "file:///x.iso",
        "source_iso_sha256": "0".repeat(64),
        "build": { "method": "command", "command": "true" },
        "smoke_verify": { "boot": { "enabled": true, "expect": ["["] } }
    }))
    .unwrap();
    let problems = validate_spec(&spec, &env);
    assert!(
        problems
            .iter()
            .any(|p| p.path == "smoke_verify.boot.expect"),
        "{problems:?}"
    );
}
