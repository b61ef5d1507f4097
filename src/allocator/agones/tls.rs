//! The TLS client of the Agones allocator service: its CA, and our certificate for mutual
//! TLS, read once at start-up from PEM files (rustls with ring; no system roots, the
//! allocator's certificate is issued by its own CA).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use super::settings::AgonesSettings;

/// The rustls client configuration `settings` describe. Without a CA file (an `http` url)
/// the configuration trusts nothing and is never used.
pub fn client_config(settings: &AgonesSettings) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    if let Some(path) = &settings.tls_ca_file {
        for cert in read_certs(path)? {
            roots
                .add(cert)
                .map_err(|e| format!("allocator.agones.tls_ca_file {path}: {e}"))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_root_certificates(roots);
    match (
        &settings.tls_client_cert_file,
        &settings.tls_client_key_file,
    ) {
        (Some(cert_path), Some(key_path)) => {
            let certs = read_certs(cert_path)?;
            let key = PrivateKeyDer::from_pem_file(key_path)
                .map_err(|e| format!("allocator.agones.tls_client_key_file {key_path}: {e}"))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("allocator.agones client certificate {cert_path}: {e}"))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// The name the server certificate is checked against, when configured.
pub fn server_name(settings: &AgonesSettings) -> Result<Option<ServerName<'static>>, String> {
    settings
        .tls_server_name
        .as_ref()
        .map(|name| {
            ServerName::try_from(name.clone())
                .map_err(|e| format!("allocator.agones.tls_server_name {name:?}: {e}"))
        })
        .transpose()
}

/// Every certificate of a PEM file; none is an error.
fn read_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| format!("cannot read PEM certificates from {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("no PEM certificate in {path}"));
    }
    Ok(certs)
}
