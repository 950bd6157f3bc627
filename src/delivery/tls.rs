//! Whom the uploader trusts over `https://`: the bundled Mozilla roots, the roots added with
//! [`Builder::root_certificate`](crate::Builder::root_certificate), and with the
//! `platform-roots` feature the platform's own store and verifier as well.
//!
//! `build()` reads the added PEM here ([`parse_roots`]) so that a bad one is refused by name
//! before any thread starts; the uploader thread then hands every root to reqwest
//! ([`trust`]). The TLS library is rustls, with the crypto provider installed as the process
//! default if there is one, else aws-lc-rs (reqwest 0.13's `rustls` feature).

use std::fmt;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::{self, PemObject};

/// The roots a reporter adds to the bundled ones, checked and in DER.
#[derive(Clone, Default)]
pub(crate) struct AddedRoots(Vec<CertificateDer<'static>>);

impl fmt::Debug for AddedRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AddedRoots({} certificates)", self.0.len())
    }
}

impl AddedRoots {
    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Why one `root_certificate` PEM was refused, in words that never quote it: a PEM passed
/// by mistake may be a private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BadPem {
    /// Not readable as PEM (a section without its end line, a bad start line, bad base64).
    Unreadable(&'static str),
    /// Readable, but without a `CERTIFICATE` section.
    NoCertificate,
    /// Its n-th certificate (from 1) is not an X.509 certificate rustls can use as a root.
    NotX509(usize),
}

impl fmt::Display for BadPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadPem::Unreadable(why) => write!(f, "is not valid PEM ({why})"),
            BadPem::NoCertificate => f.write_str("holds no `BEGIN CERTIFICATE` section"),
            BadPem::NotX509(n) => write!(f, "holds a certificate (number {n}) that does not parse as X.509"),
        }
    }
}

/// Reads every certificate of each PEM, in order; other sections (a private key) are skipped.
/// `Err` carries the index (from 0) of the PEM at fault.
pub(crate) fn parse_roots(pems: &[Vec<u8>]) -> Result<AddedRoots, (usize, BadPem)> {
    let mut roots = Vec::new();
    for (i, pem) in pems.iter().enumerate() {
        let certs = parse_pem(pem).map_err(|bad| (i, bad))?;
        roots.extend(certs);
    }
    Ok(AddedRoots(roots))
}

fn parse_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, BadPem> {
    let mut certs = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| BadPem::Unreadable(pem_problem(&e)))?;
        // The check reqwest's store makes later, made now so that build() can name the option.
        if rustls::RootCertStore::empty().add(cert.clone()).is_err() {
            return Err(BadPem::NotX509(certs.len() + 1));
        }
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(BadPem::NoCertificate);
    }
    Ok(certs)
}

/// The PEM error in fixed words: its own `Display` quotes the offending line.
fn pem_problem(e: &pem::Error) -> &'static str {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a section's base64 does not decode",
        pem::Error::SectionTooLarge => "a section is too large",
        _ => "it cannot be read",
    }
}

/// The Mozilla root store as bundled by `webpki-root-certs`.
fn bundled() -> &'static [CertificateDer<'static>] {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
}

/// Configures `client` to trust the bundled roots and `added`; with `platform-roots`, through
/// the platform's verifier, which trusts the platform's store as well.
pub(crate) fn trust(client: reqwest::ClientBuilder, added: &AddedRoots) -> reqwest::ClientBuilder {
    let certs = bundled()
        .iter()
        .chain(&added.0)
        .filter_map(|der| reqwest::Certificate::from_der(der.as_ref()).ok())
        .collect::<Vec<_>>();
    if cfg!(feature = "platform-roots") {
        // On Linux the platform's store is read when the client is built (the files
        // `SSL_CERT_FILE`, `SSL_CERT_DIR` or the distribution's bundle name); with extra roots
        // an empty or missing store is not an error.
        client.tls_certs_merge(certs)
    } else {
        client.tls_certs_only(certs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_store_is_the_mozilla_one_and_every_root_parses() {
        let pems: Vec<Vec<u8>> = Vec::new();
        assert_eq!(parse_roots(&pems).unwrap().len(), 0);
        let roots = bundled();
        assert!(roots.len() > 100, "{} roots", roots.len());
        let mut store = rustls::RootCertStore::empty();
        let (added, ignored) = store.add_parsable_certificates(roots.iter().cloned());
        assert!(added > 100 && ignored == 0, "{added} added, {ignored} ignored");
    }

    #[test]
    fn bad_pem_is_named_without_being_quoted() {
        let secret = b"-----BEGIN PRIVATE KEY-----\nU0VDUkVU\n-----END PRIVATE KEY-----\n".to_vec();
        let unterminated = b"-----BEGIN CERTIFICATE-----\nU0VDUkVU\n".to_vec();
        let not_base64 = b"-----BEGIN CERTIFICATE-----\n!!SECRET!!\n-----END CERTIFICATE-----\n".to_vec();
        let not_x509 = b"-----BEGIN CERTIFICATE-----\nU0VDUkVU\n-----END CERTIFICATE-----\n".to_vec();
        assert_eq!(parse_pem(&secret), Err(BadPem::NoCertificate));
        assert_eq!(parse_pem(b"SECRET"), Err(BadPem::NoCertificate));
        assert!(matches!(parse_pem(&unterminated), Err(BadPem::Unreadable(_))));
        assert!(matches!(parse_pem(&not_base64), Err(BadPem::Unreadable(_))));
        assert_eq!(parse_pem(&not_x509), Err(BadPem::NotX509(1)));
        for bad in [secret, unterminated, not_base64, not_x509] {
            let shown = parse_pem(&bad).unwrap_err().to_string();
            assert!(!shown.contains("SECRET") && !shown.contains("U0VDUkVU"), "{shown}");
        }
        let first_bundled = bundled()[0].as_ref();
        let good = pem_of(first_bundled);
        assert_eq!(parse_roots(&[good.clone(), good.clone()]).unwrap().len(), 2);
        let mut two = good.clone();
        two.extend_from_slice(&good);
        assert_eq!(parse_roots(&[two]).unwrap().len(), 2);
        assert_eq!(parse_roots(&[good, b"junk".to_vec()]).unwrap_err(), (1, BadPem::NoCertificate));
    }

    /// DER as a PEM `CERTIFICATE` section, base64 by hand (no dependency for a test).
    fn pem_of(der: &[u8]) -> Vec<u8> {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut b64 = Vec::new();
        for chunk in der.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..4 {
                b64.push(if i <= chunk.len() { ALPHABET[(n >> (18 - 6 * i) & 63) as usize] } else { b'=' });
            }
        }
        let mut out = b"-----BEGIN CERTIFICATE-----\n".to_vec();
        for line in b64.chunks(64) {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out.extend_from_slice(b"-----END CERTIFICATE-----\n");
        out
    }
}
