//! Plugin protocol tests: the real `terraform-provider-hyops` binary, launched and spoken to the
//! way Terraform's go-plugin client does it (magic cookie, a fresh ECDSA P-521 `CA:true` client
//! certificate, the handshake line, mutual TLS with ALPN `h2` over the unix socket, health,
//! broker/stdio streams, `GRPCController.Shutdown`).
//!
//! Every wait is bounded (`WAIT`); a plugin still running when a test ends is killed.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P521_SHA512,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, RootCertStore, SignatureAlgorithm, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint, Uri};

use hyops::tfplugin5::goplugin::grpc_broker_client::GrpcBrokerClient;
use hyops::tfplugin5::goplugin::grpc_controller_client::GrpcControllerClient;
use hyops::tfplugin5::goplugin::grpc_stdio_client::GrpcStdioClient;
use hyops::tfplugin5::goplugin::Empty;
use hyops::tfplugin5::pb::provider_client::ProviderClient;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

const BIN: &str = env!("CARGO_BIN_EXE_terraform-provider-hyops");
const COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
const COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// Upper bound for every wait in this file.
const WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// A client identity shaped like the one go-plugin generates for Terraform: ECDSA P-521,
/// self-signed, `CA:true`, SAN `localhost`, client+server auth.
struct ClientIdentity {
    pem: String,
    der: CertificateDer<'static>,
    pkcs8: Vec<u8>,
}

impl ClientIdentity {
    fn terraform_like() -> ClientIdentity {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P521_SHA512).unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "HashiCorp");
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyCertSign,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::ServerAuth,
        ];
        let cert = params.self_signed(&key).unwrap();
        ClientIdentity {
            pem: cert.pem(),
            der: cert.der().clone(),
            pkcs8: key.serialize_der(),
        }
    }

    fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.pkcs8.clone()))
    }
}

/// The parsed go-plugin handshake line.
#[derive(Debug)]
struct Handshake {
    core: String,
    app: String,
    network: String,
    address: String,
    protocol: String,
    cert_b64: String,
}

impl Handshake {
    fn parse(line: &str) -> Handshake {
        let line = line
            .strip_suffix('\n')
            .expect("handshake line ends in newline");
        let f: Vec<&str> = line.split('|').collect();
        assert_eq!(f.len(), 6, "handshake line {line:?}");
        Handshake {
            core: f[0].into(),
            app: f[1].into(),
            network: f[2].into(),
            address: f[3].into(),
            protocol: f[4].into(),
            cert_b64: f[5].into(),
        }
    }

    fn server_cert(&self) -> CertificateDer<'static> {
        // go-plugin decodes with base64.RawStdEncoding: standard alphabet, no padding.
        assert!(!self.cert_b64.contains('='), "padded: {}", self.cert_b64);
        let der = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(&self.cert_b64)
            .expect("certificate is unpadded standard base64");
        CertificateDer::from(der)
    }
}

/// A running plugin process with its stdout/stderr collected on threads.
struct Plugin {
    child: Child,
    first_line: String,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
    socket_dir: tempfile::TempDir,
}

impl Plugin {
    /// Launch the binary with the cookie (unless `cookie` is false), `PLUGIN_PROTOCOL_VERSIONS`,
    /// and `PLUGIN_CLIENT_CERT` when a client identity is given; wait for the first stdout line.
    fn start(args: &[&str], cookie: bool, client: Option<&ClientIdentity>) -> Plugin {
        Plugin::start_via(Command::new(BIN), args, cookie, client, &[])
    }

    /// Like [`Plugin::start`], with a launcher command (the binary itself, or a wrapper that
    /// runs it from `$0`) and extra environment.
    fn start_via(
        mut cmd: Command,
        args: &[&str],
        cookie: bool,
        client: Option<&ClientIdentity>,
        env: &[(&str, &str)],
    ) -> Plugin {
        let socket_dir = tempfile::tempdir().unwrap();
        cmd.args(args)
            .env_remove(COOKIE_KEY)
            .env_remove("PLUGIN_CLIENT_CERT")
            .env_remove("TF_LOG")
            .env("TF_LOG_PROVIDER", "DEBUG")
            .env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
            .env("PLUGIN_UNIX_SOCKET_DIR", socket_dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if cookie {
            cmd.env(COOKIE_KEY, COOKIE);
        }
        if let Some(c) = client {
            cmd.env("PLUGIN_CLIENT_CERT", &c.pem);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn plugin");
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || {
            let mut all = String::new();
            let mut reader = BufReader::new(out);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                let _ = tx.send(line.clone());
                all.push_str(&line);
                line.clear();
            }
            all
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let mut plugin = Plugin {
            child,
            first_line: String::new(),
            stdout: Some(stdout),
            stderr: Some(stderr),
            socket_dir,
        };
        match rx.recv_timeout(WAIT) {
            Ok(line) => plugin.first_line = line,
            Err(_) => {
                let _ = plugin.child.kill();
                let (_, err) = plugin.finish();
                panic!("no stdout line from the plugin within {WAIT:?}; stderr:\n{err}");
            }
        }
        plugin
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({sig})");
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Wait (bounded) for the process to exit.
    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("plugin did not exit within {WAIT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// All of stdout and stderr (call after the process exited).
    fn finish(&mut self) -> (String, String) {
        let out = self
            .stdout
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        let err = self
            .stderr
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default();
        (out, err)
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Run the binary to completion (bounded) and return (status, stdout, stderr).
fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (ExitStatus, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove(COOKIE_KEY)
        .env_remove("PLUGIN_CLIENT_CERT")
        .env_remove("TF_LOG")
        .env_remove("TF_LOG_PROVIDER");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_bounded(cmd, WAIT)
}

/// Run `cmd` with piped output, killing it after `limit`; return (status, stdout, stderr).
fn run_bounded(mut cmd: Command, limit: Duration) -> (ExitStatus, String, String) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, out_t.join().unwrap(), err_t.join().unwrap())
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn roots(server_cert: &CertificateDer<'static>) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.add(server_cert.clone()).unwrap();
    roots
}

/// A client TLS config like go-plugin's: trust exactly the server certificate from the handshake,
/// present the client certificate, offer ALPN `h2`.
fn client_config(
    server_cert: &CertificateDer<'static>,
    client: &ClientIdentity,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots(server_cert))
        .with_client_auth_cert(vec![client.der.clone()], client.key())
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// Open a TLS connection to the plugin's unix socket.
async fn tls_connect(
    socket: &Path,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<UnixStream>> {
    let stream = UnixStream::connect(socket).await?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(WAIT, TlsConnector::from(config).connect(name, stream))
        .await
        .map_err(|_| std::io::Error::other("TLS handshake timed out"))?
}

/// Open a TLS connection to the plugin's loopback TCP address.
async fn tls_connect_tcp(
    addr: &str,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<tokio::net::TcpStream>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").unwrap();
    tokio::time::timeout(WAIT, TlsConnector::from(config).connect(name, stream))
        .await
        .map_err(|_| std::io::Error::other("TLS handshake timed out"))?
}

/// A tonic channel over mutual TLS on the plugin's unix socket.
async fn tls_channel(socket: PathBuf, config: Arc<ClientConfig>) -> Channel {
    let connector = tower::service_fn(move |_: Uri| {
        let socket = socket.clone();
        let config = Arc::clone(&config);
        async move { tls_connect(&socket, config).await.map(TokioIo::new) }
    });
    Endpoint::from_static("http://localhost")
        .connect_timeout(WAIT)
        .timeout(WAIT)
        .connect_with_connector(connector)
        .await
        .expect("gRPC channel over mTLS")
}

/// A plaintext tonic channel on a unix socket (debug mode).
async fn plain_channel(socket: PathBuf) -> Channel {
    let connector = tower::service_fn(move |_: Uri| {
        let socket = socket.clone();
        async move { UnixStream::connect(socket).await.map(TokioIo::new) }
    });
    Endpoint::from_static("http://localhost")
        .connect_timeout(WAIT)
        .timeout(WAIT)
        .connect_with_connector(connector)
        .await
        .expect("plaintext gRPC channel")
}

async fn health_of_plugin(channel: Channel) -> i32 {
    HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status
}

/// Start a plugin with AutoMTLS and return it with its parsed handshake.
fn start_mtls_plugin(client: &ClientIdentity) -> (Plugin, Handshake) {
    let plugin = Plugin::start(&[], true, Some(client));
    let hs = Handshake::parse(&plugin.first_line);
    (plugin, hs)
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automtls_session_serves_health_schema_and_shuts_down_cleanly() {
    let client = ClientIdentity::terraform_like();
    let (mut plugin, hs) = start_mtls_plugin(&client);

    assert_eq!(
        (
            hs.core.as_str(),
            hs.app.as_str(),
            hs.network.as_str(),
            hs.protocol.as_str()
        ),
        ("1", "5", "unix", "grpc"),
        "{hs:?}"
    );
    let socket = PathBuf::from(&hs.address);
    let socket_parent = socket.parent().unwrap().to_path_buf();
    assert_eq!(socket_parent.parent(), Some(plugin.socket_dir.path()));
    let dir_mode = std::fs::metadata(&socket_parent)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700, "socket directory mode");

    let server_cert = hs.server_cert();
    let config = client_config(
        &server_cert,
        &client,
        &[&rustls::version::TLS13, &rustls::version::TLS12],
    );

    // The raw TLS session negotiates h2 with the pinned client certificate.
    let tls = tls_connect(&socket, Arc::clone(&config)).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    drop(tls);

    let channel = tls_channel(socket.clone(), config).await;
    assert_eq!(
        health_of_plugin(channel.clone()).await,
        ServingStatus::Serving as i32
    );

    // Terraform opens the stdio and broker streams right after connecting; both stay open.
    let mut stdio = GrpcStdioClient::new(channel.clone())
        .stream_stdio(())
        .await
        .expect("StreamStdio")
        .into_inner();
    let (_broker_tx, broker_rx) = tokio::sync::mpsc::channel(1);
    let mut broker = GrpcBrokerClient::new(channel.clone())
        .start_stream(tokio_stream::wrappers::ReceiverStream::new(broker_rx))
        .await
        .expect("StartStream")
        .into_inner();

    // Terraform forwards Ctrl-C to the process group; the plugin must survive it.
    plugin.signal(libc::SIGINT);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(plugin.is_running(), "plugin died on SIGINT");

    let schema = ProviderClient::new(channel.clone())
        .get_schema(hyops::tfplugin5::pb::get_provider_schema::Request {})
        .await
        .expect("GetSchema")
        .into_inner();
    assert!(
        schema.resource_schemas.contains_key("hyops_vyos_image"),
        "resources: {:?}",
        schema.resource_schemas.keys().collect::<Vec<_>>()
    );
    assert!(
        schema
            .data_source_schemas
            .contains_key("hyops_vyos_artifact"),
        "data sources: {:?}",
        schema.data_source_schemas.keys().collect::<Vec<_>>()
    );

    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .expect("Shutdown");

    // The held-open streams end with the server.
    let stdio_end = tokio::time::timeout(WAIT, stdio.message()).await;
    assert!(
        matches!(stdio_end, Ok(Ok(None)) | Ok(Err(_))),
        "stdio stream still open: {stdio_end:?}"
    );
    let broker_end = tokio::time::timeout(WAIT, broker.message()).await;
    assert!(
        matches!(broker_end, Ok(Ok(None)) | Ok(Err(_))),
        "broker stream still open: {broker_end:?}"
    );

    let status = plugin.wait_exit();
    assert!(status.success(), "exit status {status:?}");
    assert!(!socket.exists(), "socket left behind");
    assert!(!socket_parent.exists(), "socket directory left behind");

    let (stdout, stderr) = plugin.finish();
    assert_eq!(
        stdout, plugin.first_line,
        "stdout carries only the handshake line"
    );
    assert_eq!(stdout.lines().count(), 1);
    // TF_LOG_PROVIDER=DEBUG: stderr is hclog JSON, one object per line.
    let log_lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!log_lines.is_empty(), "no log lines at DEBUG");
    for l in &log_lines {
        for key in ["@level", "@message", "@module", "@timestamp"] {
            assert!(l[key].is_string(), "{key} missing in {l}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_client_certificate_is_refused_at_tls_layer() {
    let client = ClientIdentity::terraform_like();
    let stranger = ClientIdentity::terraform_like();
    let (mut plugin, hs) = start_mtls_plugin(&client);
    let socket = PathBuf::from(&hs.address);
    let server_cert = hs.server_cert();

    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        let config = client_config(&server_cert, &stranger, versions);
        // TLS 1.2 fails inside the handshake; under TLS 1.3 the client finishes first and the
        // server's alert arrives on the first read.
        let refused = match tls_connect(&socket, config).await {
            Err(_) => true,
            Ok(mut tls) => {
                let _ = tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
                let mut buf = [0u8; 64];
                matches!(
                    tokio::time::timeout(WAIT, tls.read(&mut buf)).await,
                    Ok(Err(_)) | Ok(Ok(0))
                )
            }
        };
        assert!(
            refused,
            "a foreign client certificate got through ({versions:?})"
        );
    }

    // The plugin keeps serving its real client.
    let config = client_config(&server_cert, &client, &[&rustls::version::TLS13]);
    let channel = tls_channel(socket, config).await;
    assert_eq!(
        health_of_plugin(channel.clone()).await,
        ServingStatus::Serving as i32
    );
    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .unwrap();
    assert!(plugin.wait_exit().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls12_only_client_with_p521_key_is_served() {
    let client = ClientIdentity::terraform_like();
    let (mut plugin, hs) = start_mtls_plugin(&client);
    let socket = PathBuf::from(&hs.address);
    let config = client_config(&hs.server_cert(), &client, &[&rustls::version::TLS12]);

    let tls = tls_connect(&socket, Arc::clone(&config)).await.unwrap();
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    drop(tls);

    let channel = tls_channel(socket, config).await;
    assert_eq!(
        health_of_plugin(channel.clone()).await,
        ServingStatus::Serving as i32
    );
    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .unwrap();
    assert!(plugin.wait_exit().success());
}

/// Signs with the P-521 key but announces and uses `ecdsa_secp384r1_sha384` (SHA-384), which is
/// what Terraform 1.0.x (Go 1.16 crypto/tls) does under TLS 1.2 with its P-521 client key.
#[derive(Debug)]
struct P521KeySha384Signer(Arc<aws_lc_rs::signature::EcdsaKeyPair>);

impl rustls::sign::SigningKey for P521KeySha384Signer {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn rustls::sign::Signer>> {
        offered
            .contains(&SignatureScheme::ECDSA_NISTP384_SHA384)
            .then(|| Box::new(P521KeySha384Signer(Arc::clone(&self.0))) as _)
    }
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ECDSA
    }
}

impl rustls::sign::Signer for P521KeySha384Signer {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        self.0
            .sign(&rng, message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| rustls::Error::General("signing failed".into()))
    }
    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ECDSA_NISTP384_SHA384
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls12_client_signing_p521_key_with_sha384_like_terraform_1_0_is_served() {
    let client = ClientIdentity::terraform_like();
    let (mut plugin, hs) = start_mtls_plugin(&client);
    let socket = PathBuf::from(&hs.address);

    let key = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P521_SHA384_ASN1_SIGNING,
        &client.pkcs8,
    )
    .unwrap();
    let certified = CertifiedKey::new(
        vec![client.der.clone()],
        Arc::new(P521KeySha384Signer(Arc::new(key))),
    );
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots(&hs.server_cert()))
        .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![b"h2".to_vec()];
    let channel = tls_channel(socket, Arc::new(config)).await;
    assert_eq!(
        health_of_plugin(channel.clone()).await,
        ServingStatus::Serving as i32
    );
    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .unwrap();
    assert!(plugin.wait_exit().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_plugin_and_removes_the_socket() {
    let client = ClientIdentity::terraform_like();
    let (mut plugin, hs) = start_mtls_plugin(&client);
    let socket = PathBuf::from(&hs.address);
    assert!(socket.exists());
    plugin.signal(libc::SIGTERM);
    assert!(plugin.wait_exit().success());
    assert!(!socket.exists(), "socket left behind");
}

#[test]
fn without_cookie_explains_it_is_a_plugin_and_exits_1() {
    let (status, stdout, stderr) = run_to_exit(&[], &[]);
    assert_eq!(status.code(), Some(1));
    assert!(stdout.is_empty(), "stdout: {stdout:?}");
    assert!(stderr.contains("Terraform"), "{stderr}");
    assert!(stderr.contains("plugin"), "{stderr}");
    assert!(stderr.contains("image apply"), "{stderr}");

    // A wrong cookie value is no cookie.
    let (status, stdout, _) = run_to_exit(&[], &[(COOKIE_KEY, "not-the-cookie")]);
    assert_eq!(status.code(), Some(1));
    assert!(stdout.is_empty());
}

#[test]
fn protocol_versions_without_5_are_refused_with_a_message() {
    let (status, stdout, stderr) = run_to_exit(
        &[],
        &[(COOKIE_KEY, COOKIE), ("PLUGIN_PROTOCOL_VERSIONS", "6")],
    );
    assert_eq!(status.code(), Some(1));
    assert!(stdout.is_empty(), "stdout: {stdout:?}");
    assert!(stderr.contains("protocol 5"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_mode_prints_reattach_line_and_serves_plaintext() {
    let mut plugin = Plugin::start(&["--debug"], false, None);
    let json = plugin
        .first_line
        .strip_prefix("TF_REATTACH_PROVIDERS='")
        .and_then(|s| s.strip_suffix("'\n"))
        .unwrap_or_else(|| panic!("reattach line: {:?}", plugin.first_line));
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let p = &v["registry.terraform.io/hybridops/hyops"];
    assert_eq!(p["Protocol"], "grpc");
    assert_eq!(p["ProtocolVersion"], 5);
    assert_eq!(p["Test"], true);
    assert_eq!(p["Pid"], plugin.child.id());
    assert_eq!(p["Addr"]["Network"], "unix");
    let socket = PathBuf::from(p["Addr"]["String"].as_str().unwrap());

    let channel = plain_channel(socket.clone()).await;
    assert_eq!(
        health_of_plugin(channel).await,
        ServingStatus::Serving as i32
    );

    // In debug mode Ctrl-C stops the provider.
    plugin.signal(libc::SIGINT);
    assert!(plugin.wait_exit().success());
    assert!(!socket.exists(), "socket left behind");
}

/// The Terraform CLI for the end-to-end check: `$TERRAFORM`, else `terraform` on PATH.
/// `HYOPS_SKIP_TERRAFORM_TESTS=1` skips explicitly; a missing binary otherwise fails.
fn terraform() -> Option<PathBuf> {
    if std::env::var("HYOPS_SKIP_TERRAFORM_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("skipping: HYOPS_SKIP_TERRAFORM_TESTS=1");
        return None;
    }
    if let Some(t) = std::env::var_os("TERRAFORM") {
        return Some(PathBuf::from(t));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|d| d.join("terraform"))
        .find(|p| p.is_file());
    Some(found.expect(
        "terraform not found: install it, set TERRAFORM=/path/to/terraform, \
         or set HYOPS_SKIP_TERRAFORM_TESTS=1",
    ))
}

#[test]
fn real_terraform_loads_the_schema_over_automtls_and_shuts_the_plugin_down() {
    let Some(terraform) = terraform() else { return };
    let work = tempfile::tempdir().unwrap();
    let bin_dir = Path::new(BIN).parent().unwrap();
    let cli_config = work.path().join("cli.tfrc");
    std::fs::write(
        &cli_config,
        format!(
            "provider_installation {{\n  dev_overrides {{\n    \
             \"registry.terraform.io/hybridops/hyops\" = {:?}\n  }}\n  direct {{}}\n}}\n",
            bin_dir.display().to_string()
        ),
    )
    .unwrap();
    std::fs::write(
        work.path().join("main.tf"),
        "terraform {\n  required_providers {\n    hyops = { source = \
         \"registry.terraform.io/hybridops/hyops\" }\n  }\n}\n",
    )
    .unwrap();
    let mut cmd = Command::new(terraform);
    cmd.current_dir(work.path())
        .args(["providers", "schema", "-json"])
        .env("TF_CLI_CONFIG_FILE", &cli_config)
        .env("TF_LOG", "TRACE")
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_IN_AUTOMATION", "1")
        .env_remove("TF_LOG_PROVIDER")
        .env_remove("TF_REATTACH_PROVIDERS");
    let (status, stdout, stderr) = run_bounded(cmd, Duration::from_secs(60));
    assert!(status.success(), "terraform failed:\n{stderr}");

    let schema: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let p = &schema["provider_schemas"]["registry.terraform.io/hybridops/hyops"];
    assert!(p["resource_schemas"]["hyops_vyos_image"].is_object(), "{p}");
    assert!(
        p["data_source_schemas"]["hyops_vyos_artifact"].is_object(),
        "{p}"
    );

    // go-plugin parsed our hclog lines (an unparsable line would be logged raw, with "@level").
    assert!(
        stderr.contains("provider.terraform-provider-hyops: plugin serving"),
        "provider log line not parsed by Terraform"
    );
    assert!(
        !stderr.contains("\"@level\""),
        "raw JSON log line reached Terraform's log"
    );
    assert!(stderr.contains("using plugin: version=5"));
    // GRPCController.Shutdown made the plugin exit by itself, no kill needed.
    assert!(
        stderr.contains("plugin exited"),
        "no plugin exit in Terraform's log"
    );
    assert!(
        !stderr.contains("failed to exit gracefully"),
        "Terraform had to kill the plugin"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_client_cert_serves_plaintext_with_empty_cert_field() {
    // TF_DISABLE_PLUGIN_TLS: Terraform passes no PLUGIN_CLIENT_CERT and expects plaintext.
    let mut plugin = Plugin::start(&[], true, None);
    let hs = Handshake::parse(&plugin.first_line);
    assert_eq!((hs.network.as_str(), hs.cert_b64.as_str()), ("unix", ""));
    let channel = plain_channel(PathBuf::from(&hs.address)).await;
    assert_eq!(
        health_of_plugin(channel.clone()).await,
        ServingStatus::Serving as i32
    );
    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .unwrap();
    assert!(plugin.wait_exit().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_to_loopback_tcp_with_mtls_when_unix_sockets_fail() {
    let client = ClientIdentity::terraform_like();
    let mut plugin = Plugin::start_via(
        Command::new(BIN),
        &[],
        true,
        Some(&client),
        &[
            ("PLUGIN_UNIX_SOCKET_DIR", "/nonexistent/hyops-protocol-test"),
            ("PLUGIN_MIN_PORT", "21000"),
            ("PLUGIN_MAX_PORT", "21999"),
        ],
    );
    let hs = Handshake::parse(&plugin.first_line);
    assert_eq!(hs.network, "tcp", "{hs:?}");
    let addr: std::net::SocketAddr = hs.address.parse().unwrap();
    assert!(addr.ip().is_loopback());
    assert!((21000..=21999).contains(&addr.port()));

    let config = client_config(&hs.server_cert(), &client, &[&rustls::version::TLS13]);
    let tls = tls_connect_tcp(&hs.address, Arc::clone(&config))
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    drop(tls);
    let connector = tower::service_fn(move |_: Uri| {
        let config = Arc::clone(&config);
        let addr = hs.address.clone();
        async move { tls_connect_tcp(&addr, config).await.map(TokioIo::new) }
    });
    let channel = Endpoint::from_static("http://localhost")
        .connect_timeout(WAIT)
        .timeout(WAIT)
        .connect_with_connector(connector)
        .await
        .unwrap();
    assert_eq!(
        health_of_plugin(channel.clone()).await,
        ServingStatus::Serving as i32
    );
    GrpcControllerClient::new(channel)
        .shutdown(Empty {})
        .await
        .unwrap();
    assert!(plugin.wait_exit().success());
}

/// Kills a (non-child) pid on drop, so a failing test leaves no orphan behind.
struct KillOnDrop(i32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill(2) has no memory-safety preconditions; ESRCH (already gone) is fine.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
    }
}

#[test]
fn plugin_stops_by_itself_when_terraform_is_killed() {
    let client = ClientIdentity::terraform_like();
    // A stand-in parent: the shell launches the plugin and waits; killing the shell with SIGKILL
    // orphans the plugin the way a crashed Terraform would.
    let pid_dir = tempfile::tempdir().unwrap();
    let pid_file = pid_dir.path().join("plugin.pid");
    let mut shell = Command::new("/bin/sh");
    shell.args(["-c", "\"$0\" & echo $! > \"$1\"; wait", BIN]);
    shell.arg(&pid_file);
    let mut parent = Plugin::start_via(shell, &[], true, Some(&client), &[]);
    let hs = Handshake::parse(&parent.first_line);
    let deadline = Instant::now() + WAIT;
    let pid = loop {
        let text = std::fs::read_to_string(&pid_file).unwrap_or_default();
        if let Ok(pid) = text.trim().parse::<i32>() {
            break pid;
        }
        assert!(Instant::now() < deadline, "wrapper wrote no pid");
        std::thread::sleep(Duration::from_millis(20));
    };
    let _reaper = KillOnDrop(pid);
    let socket = PathBuf::from(&hs.address);
    assert!(socket.exists());
    parent.child.kill().unwrap();
    parent.child.wait().unwrap();
    // The orphaned plugin notices, stops cleanly and removes its socket; its stdout (shared
    // with the reader thread) closes when it exits.
    let deadline = Instant::now() + WAIT;
    while socket.exists() {
        assert!(Instant::now() < deadline, "orphaned plugin still serving");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (stdout, _) = parent.finish();
    assert_eq!(stdout.lines().count(), 1);
}
