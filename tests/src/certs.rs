//! Certificates for the tests' TLS servers (RadSec, LDAPS), made fresh by each test.

use std::path::{Path, PathBuf};

/// The files of a TLS test: a CA, the server's certificate for `localhost`, and a
/// client certificate for the box, each PEM under `dir`.
pub struct TestCerts {
    pub ca: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

/// Makes a CA and the certificates it signs in `dir`: `ca.pem`, `server.pem` +
/// `server.key` (for `localhost`), `client.pem` + `client.key`.
pub fn test_certs(dir: &Path) -> TestCerts {
    use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
    std::fs::create_dir_all(dir).expect("dir");
    let ca_key = KeyPair::generate().expect("key");
    let mut ca = CertificateParams::new(Vec::new()).expect("params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "pbx-authd test CA");
    let ca = ca.self_signed(&ca_key).expect("CA");
    let issue = |names: Vec<String>, usage, file: &str| {
        let key = KeyPair::generate().expect("key");
        let mut p = CertificateParams::new(names).expect("params");
        p.extended_key_usages = vec![usage];
        p.distinguished_name.push(rcgen::DnType::CommonName, file);
        let cert = p.signed_by(&key, &ca, &ca_key).expect("signed");
        std::fs::write(dir.join(format!("{file}.pem")), cert.pem()).expect("write");
        std::fs::write(dir.join(format!("{file}.key")), key.serialize_pem()).expect("write");
    };
    issue(
        vec!["localhost".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
        "server",
    );
    issue(Vec::new(), ExtendedKeyUsagePurpose::ClientAuth, "client");
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write");
    TestCerts {
        ca: dir.join("ca.pem"),
        client_cert: dir.join("client.pem"),
        client_key: dir.join("client.key"),
    }
}
