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
