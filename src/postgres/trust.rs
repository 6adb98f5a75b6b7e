//! Which server certificates a connection trusts: the rustls configuration for an `sslmode`
//! and the certificate authorities of its `sslrootcert`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::conninfo::{Roots, SslMode};
use super::tls_error::TlsError;
use crate::error::BoxError;

/// The rustls configuration for `mode` (not `disable`) with `roots`, as libpq checks the
/// server's certificate: `verify-full` checks the chain and the host name, `verify-ca` the
/// chain; the other modes check nothing, unless a root file exists (the one named by
/// `sslrootcert`, which must then be readable, or libpq's default file), when they check the
/// chain as `verify-ca` does.
pub(crate) fn client_config(mode: SslMode, roots: &Roots) -> Result<ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let roots = match roots {
        Roots::System => Some(system_roots()?),
        Roots::File(path) => Some(roots_from_file(path)?),
        Roots::Default(Some(path)) if std::fs::metadata(path).is_ok() => {
            Some(roots_from_file(path)?)
        }
        Roots::Default(path) => {
            if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) {
                return Err(TlsError::MissingRootCertificate {
                    path: path
                        .clone()
                        .unwrap_or_else(|| PathBuf::from("~/.postgresql/root.crt")),
                });
            }
            None
        }
    };
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, roots) {
        (SslMode::VerifyFull, Some(roots)) => {
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|err| TlsError::Handshake(Box::new(err)))?
        }
        (_, roots) => Arc::new(ChainOnly {
            roots: roots.map(Arc::new),
            algorithms,
        }),
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| TlsError::Handshake(Box::new(err)))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(config)
}

/// The certificates of a PEM file (a bundle, such as RDS's, holds many).
fn roots_from_file(path: &Path) -> Result<RootCertStore, TlsError> {
    let failed = |source: BoxError| TlsError::RootCertificateFile {
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|err| failed(Box::new(err)))?;
    let mut roots = RootCertStore::empty();
    let (added, _unusable) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(failed("it holds no usable PEM certificate".into()));
    }
    Ok(roots)
}

/// The platform's trusted roots (the files OpenSSL would read on Linux).
fn system_roots() -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if roots.is_empty() {
        return Err(TlsError::NoSystemRoots);
    }
    Ok(roots)
}

/// A server certificate check for the modes below `verify-full`: the chain up to one of `roots`
/// and no host name (`verify-ca`), or nothing at all without roots (`require` and weaker, where
/// TLS protects against eavesdropping only). The handshake's signatures are verified in every
/// case, by rustls's own functions.
#[derive(Debug)]
struct ChainOnly {
    roots: Option<Arc<RootCertStore>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
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

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The connector for cancelling a statement ([`CancelToken::cancel_query`]): it encrypts
/// whenever the connection's `sslmode` asked for TLS (the token carries that mode), without
/// checking the certificate. A cancel request carries only the backend's id and its cancel
/// key, which can do nothing but cancel that backend's statement, on a connection the store is
/// discarding anyway; no credential or data crosses it.
///
/// [`CancelToken::cancel_query`]: tokio_postgres::CancelToken::cancel_query
pub(crate) fn cancel_connector() -> Option<MakeRustlsConnect> {
    client_config(SslMode::Require, &Roots::Default(None))
        .ok()
        .map(MakeRustlsConnect::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verify_mode_without_root_file_is_refused_before_connecting() {
        let err = client_config(SslMode::VerifyFull, &Roots::Default(None)).unwrap_err();
        assert!(matches!(err, TlsError::MissingRootCertificate { .. }));
        let missing = Roots::Default(Some("/nonexistent/root.crt".into()));
        let err = client_config(SslMode::VerifyCa, &missing).unwrap_err();
        assert!(
            err.to_string()
                .contains("\"/nonexistent/root.crt\" does not exist")
        );
        // The weaker modes use libpq's default file only when it exists.
        client_config(SslMode::Require, &missing).unwrap();
    }

    #[test]
    fn a_named_root_file_must_be_readable_pem() {
        let err =
            client_config(SslMode::Require, &Roots::File("/nonexistent.pem".into())).unwrap_err();
        assert!(
            matches!(&err, TlsError::RootCertificateFile { path, .. } if path == Path::new("/nonexistent.pem")),
            "{err}"
        );
        let dir = std::env::temp_dir().join(format!("authingo-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let err = client_config(SslMode::VerifyFull, &Roots::File(junk.clone())).unwrap_err();
        assert!(
            err.to_string().contains("no usable PEM certificate"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
