//! Certificates made by the test (rcgen): a certificate authority of its own, the server
//! certificates it signs for a [`Cluster`](crate::Cluster) or a [`PgBouncer`](crate::PgBouncer)
//! with TLS, and its certificate in a file, for `sslrootcert`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

/// Numbers this process's CA folders.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A certificate authority made for one test; its folder (holding `ca.pem`) is removed when the
/// value goes.
#[derive(Debug)]
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
}

/// A server certificate and its private key, in PEM.
#[derive(Debug, Clone)]
pub struct ServerCert {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS #8).
    pub key_pem: String,
}

impl TestCa {
    /// A new CA named `name`, its certificate written to [`file`](Self::file).
    ///
    /// # Panics
    /// When the key or the certificate cannot be made, or the file not written.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(fail);
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap_or_else(fail);
        let issuer = CertifiedIssuer::self_signed(params, key).unwrap_or_else(fail);
        let dir = std::env::temp_dir().join(format!(
            "authingo-ca-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::write(dir.join("ca.pem"), issuer.pem()))
            .unwrap_or_else(|err| panic!("writing {}/ca.pem: {err}", dir.display()));
        Self { issuer, dir }
    }

    /// The CA's certificate in PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A file holding [`pem`](Self::pem), for `sslrootcert`.
    pub fn file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A server certificate signed by this CA, valid for `names` (host names or IP addresses,
    /// as subject alternative names).
    ///
    /// # Panics
    /// When a name is neither, or the certificate cannot be made.
    pub fn issue(&self, names: &[&str]) -> ServerCert {
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names).unwrap_or_else(fail);
        params
            .distinguished_name
            .push(DnType::CommonName, "authingo test server");
        let key = KeyPair::generate().unwrap_or_else(fail);
        let cert = params.signed_by(&key, &self.issuer).unwrap_or_else(fail);
        ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

impl Drop for TestCa {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn fail<T>(err: rcgen::Error) -> T {
    panic!("making a test certificate: {err}")
}

/// Writes `cert`'s two files into `dir` as `server.crt` and `server.key`, the key readable by
/// its owner only (the server refuses it otherwise), both owned by `owner` when given.
pub(crate) fn write_server_files(dir: &Path, cert: &ServerCert, owner: Option<(u32, u32)>) {
    use std::os::unix::fs::PermissionsExt as _;
    for (name, contents) in [
        ("server.crt", &cert.cert_pem),
        ("server.key", &cert.key_pem),
    ] {
        let path = dir.join(name);
        let written = std::fs::write(&path, contents)
            .and_then(|()| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)))
            .and_then(|()| match owner {
                Some((uid, gid)) => std::os::unix::fs::chown(&path, Some(uid), Some(gid)),
                None => Ok(()),
            });
        if let Err(err) = written {
            panic!("writing {}: {err}", path.display());
        }
    }
}
