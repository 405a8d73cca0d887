//! go-plugin AutoMTLS, server side.
//!
//! Terraform generates a fresh self-signed ECDSA P-521 client certificate (`CA:true`) per plugin
//! launch and passes it in `PLUGIN_CLIENT_CERT`; the plugin answers with its own fresh
//! self-signed server certificate in the handshake line. Each side trusts exactly the other's
//! certificate.
//!
//! Owns the server certificate and the rustls configuration. Costly caveats:
//! - webpki refuses a `CA:true` certificate as an end entity, so the client certificate is
//!   **pinned by exact DER** instead of path-validated; only its handshake signature is checked,
//!   through rustls' aws-lc-rs algorithm table (which covers P-521/SHA-512 and the
//!   P-521-key/SHA-384 combination Terraform 1.0.x signs with under TLS 1.2; ring covers neither).
//! - ALPN must offer `h2`: current grpc-go clients refuse a server that negotiates none.

use std::sync::Arc;

use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256,
};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use super::PluginError;

/// The plugin's TLS identity for one run.
pub(super) struct ServerTls {
    /// The server certificate, DER (goes into the handshake line).
    pub(super) cert_der: CertificateDer<'static>,
    /// The rustls configuration to accept connections with.
    pub(super) config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Build the TLS identity for a run whose client presented `client_cert_pem`.
    pub(super) fn new(client_cert_pem: &str) -> Result<ServerTls, PluginError> {
        let client_der = CertificateDer::from_pem_slice(client_cert_pem.as_bytes())
            .map_err(|e| PluginError::ClientCert(e.to_string()))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = Arc::new(PinnedClientCert {
            der: client_der,
            algorithms: provider.signature_verification_algorithms,
        });
        let (cert_der, key) = server_certificate()?;
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![cert_der.clone()], key)?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(ServerTls {
            cert_der,
            config: Arc::new(config),
        })
    }
}

/// A fresh self-signed ECDSA P-256 certificate for `localhost` (serverAuth), valid from an hour
/// ago for ten years.
fn server_certificate() -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), PluginError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
    params
        .distinguished_name
        .push(DnType::OrganizationName, "terraform-provider-hyops");
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(3650);
    let cert = params.self_signed(&key)?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((cert.der().clone(), key_der))
}

/// Accepts exactly one client certificate, byte for byte, and verifies the client's handshake
/// signature with it.
#[derive(Debug)]
struct PinnedClientCert {
    der: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for PinnedClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.der.as_ref() {
            Ok(ClientCertVerified::assertion())
        } else {
            tracing::warn!("TLS client presented a certificate other than PLUGIN_CLIENT_CERT");
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_offers_p521_sha512_and_p384_sha384() {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let v = PinnedClientCert {
            der: CertificateDer::from(vec![1, 2, 3]),
            algorithms: provider.signature_verification_algorithms,
        };
        let schemes = v.supported_verify_schemes();
        assert!(schemes.contains(&SignatureScheme::ECDSA_NISTP521_SHA512));
        assert!(schemes.contains(&SignatureScheme::ECDSA_NISTP384_SHA384));
        assert!(v.root_hint_subjects().is_empty());
        assert!(v.client_auth_mandatory());
        let other = CertificateDer::from(vec![1, 2, 4]);
        assert!(v.verify_client_cert(&other, &[], UnixTime::now()).is_err());
        let same = CertificateDer::from(vec![1, 2, 3]);
        assert!(v.verify_client_cert(&same, &[], UnixTime::now()).is_ok());
    }

    #[test]
    fn garbage_client_cert_is_refused() {
        let err = ServerTls::new("not a pem").unwrap_err();
        assert!(matches!(err, PluginError::ClientCert(_)), "{err}");
    }
}
