//! S3 (moto) and Azure (azurite) through object_store.

use crate::support::*;
use hyops::engine::publish::refs::{self, ArtifactHome, Release};

/// Reference mechanics on one store: two publishers of the same artifact each record a
/// reference; the first release keeps everything, the last deletes the files, the manifest and
/// the references; an artifact without references (published before they existed) is deleted
/// by its only known user.
async fn reference_conformance(target: &PublishTarget, settings: &StoreSettings) {
    let work = tempfile::tempdir().unwrap();
    let files = vec![
        make_file(work.path(), "r.qcow2", "qcow2", 200_000, 51),
        make_file(work.path(), "r.raw.gz", "raw.gz", 50_000, 52),
    ];
    let cancel = CancellationToken::new();
    let (a, b) = (
        refs::new_reference_id().unwrap(),
        refs::new_reference_id().unwrap(),
    );
    let mut first = target.clone();
    first.reference_id = Some(a.clone());
    let set = publish(&first, &files, &meta("6.0"), &cancel)
        .await
        .unwrap();
    let mut second = target.clone();
    second.reference_id = Some(b.clone());
    let again = publish(&second, &files, &meta("6.0"), &cancel)
        .await
        .unwrap();
    assert_eq!(again.uploaded, 0, "the second publisher adopts the objects");

    let home = ArtifactHome::locate(
        &set.files[0].storage_uri,
        &set.manifest.artifact_key,
        "6.0",
        &files[0].sha256,
        None,
    )
    .unwrap();
    // the store as destroy builds it: from the artifact's home, rooted at its repository
    let store = home.store(settings).unwrap();
    let mut names = refs::references(store.as_ref(), home.dir()).await.unwrap();
    names.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(names, want);
    let mut objects = vec![home.object_of(&set.manifest_storage_uri).unwrap()];
    for f in &set.files {
        objects.push(home.object_of(&f.storage_uri).unwrap());
    }
    // confinement: another bucket's URI is refused
    let foreign = set.files[0].storage_uri.replacen("://", "://other-", 1);
    assert!(home.object_of(&foreign).is_err(), "{foreign}");

    let r = refs::release(store.as_ref(), home.dir(), Some(&a), &objects, false)
        .await
        .unwrap();
    assert_eq!(
        r,
        Release::KeptForOthers {
            removed: true,
            others: 1
        }
    );
    for o in &objects {
        store.head(o).await.unwrap();
    }
    let r = refs::release(store.as_ref(), home.dir(), Some(&b), &objects, false)
        .await
        .unwrap();
    assert_eq!(
        r,
        Release::Deleted {
            objects: 3,
            late_references: 0
        }
    );
    for o in &objects {
        assert!(
            matches!(store.head(o).await, Err(PublishError::NotFound { .. })),
            "{o}"
        );
    }
    assert!(store
        .list(&format!("{}refs/", home.dir()))
        .await
        .unwrap()
        .is_empty());

    // published before references existed: the only known user deletes it
    publish(target, &files, &meta("6.0"), &cancel)
        .await
        .unwrap();
    assert!(refs::references(store.as_ref(), home.dir())
        .await
        .unwrap()
        .is_empty());
    let r = refs::release(store.as_ref(), home.dir(), None, &objects, false)
        .await
        .unwrap();
    assert_eq!(
        r,
        Release::Deleted {
            objects: 3,
            late_references: 0
        }
    );
}
async fn store_conformance(target: &PublishTarget, settings: &StoreSettings, big: usize) {
    let work = tempfile::tempdir().unwrap();
    let files = vec![
        make_file(work.path(), "o.qcow2", "qcow2", big, 41),
        make_file(work.path(), "o.raw.gz", "raw.gz", 100_000, 42),
    ];
    let cancel = CancellationToken::new();
    let set = publish(target, &files, &meta("5.0"), &cancel)
        .await
        .unwrap();
    assert_eq!(set.uploaded, 2);
    let store = target.store().unwrap();
    for (f, p) in files.iter().zip(&set.files) {
        let head = store.head(&p.object).await.unwrap();
        assert_eq!(head.size, f.size);
        assert_eq!(
            head.sha256.as_deref(),
            Some(f.sha256.as_str()),
            "sha256 metadata"
        );
        // S3 (moto): the store's own sha256 (composite for multipart, none for a single put on
        // moto), never our own metadata; Azure: the blob MD5 every block was checked against.
        assert!(
            p.remote_checksum.is_empty()
                || p.remote_checksum.starts_with("sha256:")
                || p.remote_checksum.starts_with("md5:"),
            "{}",
            p.remote_checksum
        );
    }
    let m = fetch_manifest(&set.manifest_storage_uri, settings)
        .await
        .unwrap();
    assert_eq!(m, set.manifest);
    assert_eq!(
        verify_published(&m, Some(&set.manifest_storage_uri), settings)
            .await
            .unwrap(),
        Verification::Present
    );
    let again = publish(target, &files, &meta("5.0"), &cancel)
        .await
        .unwrap();
    assert_eq!((again.uploaded, again.skipped), (0, 2));
    // A different object at the name is refused, not overwritten.
    let other = make_file(work.path(), "other", "qcow2", 1000, 43);
    let (st, name) = store_for_uri(&set.files[1].storage_uri, settings).unwrap();
    let src = UploadSource {
        path: &other.path,
        size: other.size,
        sha256: &other.sha256,
        crc32c: other.crc32c,
        md5: None,
        content_type: "application/octet-stream",
    };
    let err = st
        .put_file_if_absent(&name, &src, &cancel)
        .await
        .unwrap_err();
    assert!(
        matches!(err, PublishError::AlreadyExistsDifferent { .. }),
        "{err:?}"
    );
    assert_eq!(
        delete_published(&m, Some(&set.manifest_storage_uri), settings)
            .await
            .unwrap(),
        3
    );
    let v = verify_published(&m, Some(&set.manifest_storage_uri), settings)
        .await
        .unwrap();
    assert!(matches!(v, Verification::Gone { .. }), "{v:?}");
}

#[tokio::test]
async fn s3_publish_head_delete_on_moto() {
    if !wanted(
        "HYOPS_TEST_S3",
        std::process::Command::new("moto_server").arg("--help"),
    ) {
        return;
    }
    let port = free_port();
    let _moto = tokio::process::Command::new("moto_server")
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::timeout(TEST_TIMEOUT, async {
        wait_for_port(port).await;
        let endpoint = format!("http://127.0.0.1:{port}");
        let r = reqwest::Client::new()
            .put(format!("{endpoint}/hyops-s3"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "create bucket: {}", r.status());
        let settings = StoreSettings {
            s3_endpoint: Some(endpoint),
            s3_region: Some("us-east-1".into()),
            s3_access_key: Some(("testing".into(), SecretString::from("testing"))),
            part_size: Some(5 * 1024 * 1024),
            ..Default::default()
        };
        let spec = PublishSpec {
            backend: Some(Backend::S3),
            bucket: Some("hyops-s3".into()),
            prefix: Some("s3/".into()),
            ..Default::default()
        };
        let target = PublishTarget::resolve(&spec, &settings, None).unwrap();
        // 12 MiB: a real multipart upload with 5 MiB parts.
        store_conformance(&target, &settings, 12 * 1024 * 1024 + 7).await;
        reference_conformance(&target, &settings).await;
    })
    .await
    .expect("test timed out");
}

/// A running `azurite-blob` on a free loopback port, killed (with its data folder) on drop.
pub(crate) struct Azurite {
    pub(crate) port: u16,
    _location: tempfile::TempDir,
    _child: tokio::process::Child,
}

/// Starts azurite, or `None` when the Azure suite is not wanted here (`HYOPS_TEST_AZURE`).
pub(crate) fn start_azurite() -> Option<Azurite> {
    if !wanted(
        "HYOPS_TEST_AZURE",
        std::process::Command::new("azurite-blob").arg("--help"),
    ) {
        return None;
    }
    let port = free_port();
    let location = tempfile::tempdir().unwrap();
    let child = tokio::process::Command::new("azurite-blob")
        .args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--silent",
        ])
        .arg("--location")
        .arg(location.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .process_group(0)
        .spawn()
        .unwrap();
    Some(Azurite {
        port,
        _location: location,
        _child: child,
    })
}

pub(crate) const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub(crate) const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Creates a container with a SharedKey-signed request (azurite checks signatures).
pub(crate) async fn azurite_create_container(endpoint: &str, container: &str) {
    use base64::Engine as _;
    let date = httpdate(std::time::SystemTime::now());
    let version = "2021-08-06";
    let string_to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{container}\nrestype:container"
    );
    let key = base64::engine::general_purpose::STANDARD
        .decode(AZURITE_KEY)
        .unwrap();
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key);
    let sig = base64::engine::general_purpose::STANDARD
        .encode(aws_lc_rs::hmac::sign(&k, string_to_sign.as_bytes()).as_ref());
    let r = reqwest::Client::new()
        .put(format!("{endpoint}/{container}?restype=container"))
        .header("x-ms-date", &date)
        .header("x-ms-version", version)
        .header("Content-Length", "0")
        .header(
            "Authorization",
            format!("SharedKey {AZURITE_ACCOUNT}:{sig}"),
        )
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert!(
        status.is_success(),
        "create container: {status} {}",
        r.text().await.unwrap()
    );
}

fn httpdate(t: std::time::SystemTime) -> String {
    let d = time::OffsetDateTime::from(t);
    d.format(time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    ))
    .unwrap()
}

#[tokio::test]
async fn azure_publish_head_delete_on_azurite() {
    let Some(azurite) = start_azurite() else {
        return;
    };
    let port = azurite.port;
    tokio::time::timeout(TEST_TIMEOUT, async {
        wait_for_port(port).await;
        let endpoint = format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}");
        azurite_create_container(&endpoint, "hyops-az").await;
        let settings = StoreSettings {
            azure_storage_account: Some(AZURITE_ACCOUNT.into()),
            azure_endpoint: Some(endpoint),
            azure_access_key: Some(SecretString::from(AZURITE_KEY)),
            part_size: Some(5 * 1024 * 1024),
            ..Default::default()
        };
        let spec = PublishSpec {
            backend: Some(Backend::Azure),
            bucket: Some("hyops-az".into()),
            prefix: Some("az/".into()),
            ..Default::default()
        };
        let target = PublishTarget::resolve(&spec, &settings, None).unwrap();
        store_conformance(&target, &settings, 11 * 1024 * 1024 + 3).await;
        reference_conformance(&target, &settings).await;

        // A wrong account key is an authentication error, not a retry loop.
        let mut wrong = settings.clone();
        wrong.azure_access_key = Some(SecretString::from(
            "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==",
        ));
        let target = PublishTarget::resolve(&spec, &wrong, None).unwrap();
        let work = tempfile::tempdir().unwrap();
        let files = vec![make_file(work.path(), "w.qcow2", "qcow2", 1000, 44)];
        let err = publish(&target, &files, &meta("5.1"), &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(matches!(err, PublishError::Auth { .. }), "{err:?}");
    })
    .await
    .expect("test timed out");
}
