//! TLS to the database with rustls: the server's certificate is verified
//! (chain and host name) against the operator's CA file, or the system's
//! roots. There is no "encrypt but trust anyone" mode.

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use strongroom_store::{StoreError, StoreResult};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{PgOptions, unavailable};

/// The connector every connection of a store uses (it is only used when the
/// URL's `sslmode` is not `disable`).
pub(crate) fn connector(opts: &PgOptions) -> StoreResult<MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    match &opts.ca_file {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| unavailable("reading the database CA file", e))?
                .collect::<Result<_, _>>()
                .map_err(|e| unavailable("reading the database CA file", e))?;
            if certs.is_empty() {
                return Err(StoreError::Unavailable(
                    "the database CA file holds no certificate".into(),
                ));
            }
            for c in certs {
                roots
                    .add(c)
                    .map_err(|e| unavailable("a database CA certificate is not usable", e))?;
            }
        }
        None => {
            // Unreadable system certificates are skipped, as every TLS client does.
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| unavailable("configuring TLS", e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}
