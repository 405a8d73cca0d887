//! S3 integrity and faults: moto_server behind a recording, fault-injecting proxy
//! (test-fixtures/proxy/fault_proxy.py). The proxy shows what each request declared; its faults
//! hit data requests (parts and single puts).

use crate::support::*;

const MIB: usize = 1024 * 1024;
const BUCKET_S3: &str = "hyops-s3-faults";

/// The recording, fault-injecting proxy in front of an emulator on `upstream`.
pub(crate) struct FaultProxy {
    _child: tokio::process::Child,
    _stdin: tokio::process::ChildStdin,
    pub(crate) url: String,
}

impl FaultProxy {
    pub(crate) async fn start(upstream: u16) -> FaultProxy {
        let mut child = tokio::process::Command::new("python3")
            .arg(fixtures().join("proxy/fault_proxy.py"))
            .args(["--upstream", &upstream.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("proxy did not start")
            .unwrap()
            .expect("proxy printed nothing");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        FaultProxy {
            _child: child,
            _stdin: stdin,
            url: format!("http://127.0.0.1:{}", v["port"]),
        }
    }

    pub(crate) async fn control(&self, v: serde_json::Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/__control", self.url))
            .json(&v)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    pub(crate) async fn stats(&self) -> serde_json::Value {
        reqwest::get(format!("{}/__stats", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

struct S3Stack {
    _moto: tokio::process::Child,
    proxy: FaultProxy,
    moto: String,
}

impl S3Stack {
    async fn start() -> Option<S3Stack> {
        if !wanted(
            "HYOPS_TEST_S3",
            std::process::Command::new("moto_server").arg("--help"),
        ) {
            return None;
        }
        let port = free_port();
        let moto = tokio::process::Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        wait_for_port(port).await;
        let proxy = FaultProxy::start(port).await;
        let moto_url = format!("http://127.0.0.1:{port}");
        let r = reqwest::Client::new()
            .put(format!("{moto_url}/{BUCKET_S3}"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "create bucket: {}", r.status());
        Some(S3Stack {
            _moto: moto,
            proxy,
            moto: moto_url,
        })
    }

    fn target(&self, prefix: &str) -> PublishTarget {
        let settings = StoreSettings {
            s3_endpoint: Some(self.proxy.url.clone()),
            s3_region: Some("us-east-1".into()),
            s3_access_key: Some(("testing".into(), SecretString::from("testing"))),
            part_size: Some(5 * MIB),
            ..Default::default()
        };
        let spec = PublishSpec {
            backend: Some(Backend::S3),
            bucket: Some(BUCKET_S3.into()),
            prefix: Some(prefix.into()),
            ..Default::default()
        };
        PublishTarget::resolve(&spec, &settings, None).unwrap()
    }

    async fn control(&self, v: serde_json::Value) {
        self.proxy.control(v).await
    }

    async fn stats(&self) -> serde_json::Value {
        self.proxy.stats().await
    }

    /// Bytes of an object straight from moto; `None` when absent.
    async fn stored(&self, name: &str) -> Option<Vec<u8>> {
        let r = reqwest::get(format!("{}/{BUCKET_S3}/{name}", self.moto))
            .await
            .unwrap();
        if r.status() == 404 {
            return None;
        }
        let status = r.status();
        let body = r.bytes().await.unwrap().to_vec();
        assert!(
            status.is_success(),
            "{name}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        Some(body)
    }
}

/// Part uploads recorded by the proxy: (length, headers).
fn parts(stats: &serde_json::Value) -> Vec<(u64, serde_json::Value)> {
    stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["method"] == "PUT" && r["query"].as_str().unwrap_or("").contains("partNumber")
        })
        .map(|r| (r["length"].as_u64().unwrap(), r["headers"].clone()))
        .collect()
}

async fn publish_one(
    s: &S3Stack,
    prefix: &str,
    len: usize,
) -> (
    Result<hyops::engine::publish::PublishedSet, PublishError>,
    Vec<u8>,
    String,
    String,
) {
    let work = tempfile::tempdir().unwrap();
    let file = make_file(work.path(), "s.qcow2", "qcow2", len, len as u64);
    let bytes = std::fs::read(&file.path).unwrap();
    let target = s.target(prefix);
    let r = publish(
        &target,
        std::slice::from_ref(&file),
        &meta("3.1"),
        &CancellationToken::new(),
    )
    .await;
    let layout = ObjectLayout::new(prefix, "vyos-test", "3.1", &file.sha256).unwrap();
    let object = layout.artifact("qcow2").unwrap();
    let manifest = layout.manifest();
    (r, bytes, object, manifest)
}

#[tokio::test]
async fn s3_publish_declares_sha256_on_every_request_and_confirms_the_store_checksum() {
    let Some(s) = S3Stack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        let (r, file, object, manifest) = publish_one(&s, "sum/", 12 * MIB + 4321).await;
        let set = r.unwrap();
        let stats = s.stats().await;
        let parts = parts(&stats);
        assert_eq!(parts.len(), 3, "{stats}");
        for (_, h) in &parts {
            assert!(
                h["x-amz-checksum-sha256"].is_string(),
                "part without checksum: {h}"
            );
        }
        let requests = stats["requests"].as_array().unwrap();
        let initiation = requests
            .iter()
            .find(|r| {
                r["method"] == "POST" && r["query"].as_str().unwrap_or("").starts_with("uploads")
            })
            .expect("multipart initiation");
        assert_eq!(initiation["headers"]["x-amz-checksum-algorithm"], "SHA256");
        // The manifest is a single conditional put with its checksum.
        let single = requests
            .iter()
            .find(|r| {
                r["method"] == "PUT" && r["path"].as_str().unwrap_or("").ends_with("manifest.json")
            })
            .expect("manifest put");
        assert!(
            single["headers"]["x-amz-checksum-sha256"].is_string(),
            "{single}"
        );
        assert_eq!(single["headers"]["if-none-match"], "*", "{single}");
        // The store's own (composite) checksum confirmed the object, and is the contract's.
        let rc = &set.files[0].remote_checksum;
        // moto leaves off AWS's "-<parts>" suffix of a composite checksum
        assert!(rc.starts_with("sha256:") && rc.len() > 40, "{rc}");
        assert_eq!(s.stored(&object).await.as_deref(), Some(&file[..]));
        // (moto answers an unsigned GET of a .json key 403, so ask through the store)
        let store = s.target("sum/").store().unwrap();
        assert!(store.head(&manifest).await.is_ok());
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn s3_503s_and_a_cut_on_parts_resend_only_those_parts() {
    let Some(s) = S3Stack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        s.control(serde_json::json!({"fail_503": 2, "cut": 1}))
            .await;
        let (r, file, object, _) = publish_one(&s, "busy/", 16 * MIB + 3).await;
        r.unwrap();
        let stats = s.stats().await;
        assert_eq!(stats["counters"]["injected_503"], 2, "{stats}");
        assert_eq!(stats["counters"]["cuts"], 1, "{stats}");
        let size = file.len() as u64;
        let sent: u64 = parts(&stats).iter().map(|(n, _)| n).sum();
        // 4 parts + 2 refused + ... the cut one is re-sent but not recorded (dropped before)
        assert!(parts(&stats).len() <= 4 + 2, "{stats}");
        assert!(
            sent >= size && sent - size < size,
            "re-sent {} of {size}",
            sent - size
        );
        assert_eq!(s.stored(&object).await.as_deref(), Some(&file[..]));
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn s3_corrupted_part_is_caught_by_the_store_checksum_and_not_claimed() {
    let Some(s) = S3Stack::start().await else {
        return;
    };
    tokio::time::timeout(TEST_TIMEOUT, async {
        s.control(serde_json::json!({"corrupt": 1})).await;
        let (r, _file, object, manifest) = publish_one(&s, "bad/", 11 * MIB).await;
        let stats = s.stats().await;
        assert_eq!(stats["counters"]["corrupted"], 1, "{stats}");
        let err = r.unwrap_err();
        // moto does not check the declared x-amz-checksum-sha256 (AWS refuses such a part with
        // BadDigest); the store-computed composite read back afterwards does not match ours.
        assert!(matches!(err, PublishError::Mismatch { .. }), "{err:?}");
        assert!(err.to_string().contains("store sha256"), "{err}");
        assert!(s.stored(&manifest).await.is_none(), "nothing claimed");
        assert!(
            s.stored(&object).await.is_none(),
            "the bad object was not left behind"
        );
    })
    .await
    .expect("test timed out");
}
