//! HTTPS certificate: loaded from PEM files, or — when none is configured — a
//! self-signed ECDSA P-256 certificate generated on first start and kept on flash, so the
//! box has a stable fingerprint across restarts. Reloaded on SIGHUP.

use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read certificate {path}: {detail}")]
    Read { path: String, detail: String },
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("certificate and key do not form a usable TLS identity: {0}")]
    Config(String),
}

/// The current TLS identity, swappable at run time.
pub struct Tls {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

impl Tls {
    /// Loads the configured certificate, generating it first when it is ours to generate.
    /// `names` are the DNS names and IP addresses a generated certificate covers.
    pub fn new(files: TlsFiles, names: &[String]) -> Result<Tls, TlsError> {
        if files.generate && !(files.cert.exists() && files.key.exists()) {
            generate(&files, names)?;
            tracing::info!(cert = %files.cert.display(), "generated a self-signed ECDSA P-256 certificate");
        }
        let config = load(&files)?;
        Ok(Tls {
            files,
            current: RwLock::new(config),
        })
    }

    /// Re-reads the certificate files (SIGHUP); on error the old identity stays.
    pub fn reload(&self, files: TlsFiles) -> Result<(), TlsError> {
        let config = load(&files)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(Arc::clone(
            &self.current.read().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

fn generate(files: &TlsFiles, names: &[String]) -> Result<(), TlsError> {
    let gen = |e: rcgen::Error| TlsError::Generate(e.to_string());
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen)?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(gen)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "PBX web login (self-signed)");
    let cert = params.self_signed(&key).map_err(gen)?;
    for (path, bytes, mode) in [
        (&files.key, key.serialize_pem(), 0o600),
        (&files.cert, cert.pem(), 0o644),
    ] {
        let w = |source| TlsError::Write {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(w)?;
        }
        crate::fsutil::write_atomic(path, bytes.as_bytes(), mode).map_err(w)?;
    }
    Ok(())
}

fn read_err(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Read {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

/// Whether the configured key and certificate load and go together (the self-test).
pub fn check(files: &TlsFiles) -> Result<(), TlsError> {
    load(files).map(drop)
}

fn load(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| read_err(&files.cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| read_err(&files.cert, e))?;
    if certs.is_empty() {
        return Err(read_err(&files.cert, "no CERTIFICATE block"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| read_err(&files.key, e))?;
    let provider = Arc::new(provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // The server's order: AES-128-GCM with SHA-256 first, whatever the client lists
    // first (OpenSSL lists AES-256-GCM-SHA384): ring hashes SHA-256 with the CPU's SHA
    // instructions where it has them, SHA-384 without — a handshake's transcript hash
    // and key schedule were an eighth of its cost (perf, docs/performance.md).
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}

/// ring's suites with TLS 1.3's AES-128-GCM-SHA256 first; the rest as ring orders them.
fn provider() -> rustls::crypto::CryptoProvider {
    let mut p = rustls::crypto::ring::default_provider();
    let first = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256;
    p.cipher_suites.retain(|s| s.suite() != first.suite());
    p.cipher_suites.insert(0, first);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_reuses_the_same_certificate() {
        let d = std::env::temp_dir().join(format!("pbx-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let files = TlsFiles {
            cert: d.join("tls/cert.pem"),
            key: d.join("tls/key.pem"),
            generate: true,
        };
        Tls::new(files.clone(), &["localhost".into(), "127.0.0.1".into()]).expect("generate");
        let first = std::fs::read(&files.cert).expect("cert written");
        assert!(String::from_utf8_lossy(&first).contains("BEGIN CERTIFICATE"));
        Tls::new(files.clone(), &["localhost".into()]).expect("reuse");
        assert_eq!(std::fs::read(&files.cert).expect("cert"), first);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files.key)
            .expect("key")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "private key readable by root only");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_configured_but_missing_certificate_is_an_error_not_a_new_one() {
        let files = TlsFiles {
            cert: "/nonexistent/cert.pem".into(),
            key: "/nonexistent/key.pem".into(),
            generate: false,
        };
        assert!(matches!(Tls::new(files, &[]), Err(TlsError::Read { .. })));
    }
}
