//! Whom the uploader trusts over `https://`: the Mozilla root store bundled with the crate.
//!
//! The TLS library is rustls, with the crypto provider installed as the process default if
//! there is one, else aws-lc-rs (reqwest 0.13's `rustls` feature).

use rustls::pki_types::CertificateDer;

/// The Mozilla root store as bundled by `webpki-root-certs`.
fn bundled() -> &'static [CertificateDer<'static>] {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
}

/// Configures `client` to trust the bundled roots and only them, as reqwest 0.12's
/// `rustls-tls` did: reqwest 0.13's default, the platform's verifier, refuses to start on a
/// Linux machine without a CA bundle (a slim container).
pub(crate) fn trust(client: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    let certs = bundled().iter().filter_map(|der| reqwest::Certificate::from_der(der.as_ref()).ok());
    client.tls_certs_only(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_store_is_the_mozilla_one_and_every_root_parses() {
        let roots = bundled();
        assert!(roots.len() > 100, "{} roots", roots.len());
        let mut store = rustls::RootCertStore::empty();
        let (added, ignored) = store.add_parsable_certificates(roots.iter().cloned());
        assert!(added > 100 && ignored == 0, "{added} added, {ignored} ignored");
    }
}
