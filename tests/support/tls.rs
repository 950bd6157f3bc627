//! TLS on 127.0.0.1: a certificate authority made for the test run by rcgen and a server
//! certificate it issued for `localhost` and `127.0.0.1`; the [`RawServer`] behind rustls;
//! and [`Stall`], which takes TCP connections and never answers a TLS ClientHello.

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::raw::raw_serve;
use super::{PATIENCE, Raw, RawServer};

/// A certificate authority and the server certificate it issued.
pub struct TestCa {
    /// The authority's own (self-signed) certificate, PEM: what a client must trust.
    pub pem: String,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivatePkcs8KeyDer<'static>,
}

impl TestCa {
    /// A fresh authority named `name`, and a certificate for `localhost` and `127.0.0.1`.
    pub fn new(name: &str) -> TestCa {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(DnType::CommonName, name);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let mut server = CertificateParams::new(["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        server.distinguished_name.push(DnType::CommonName, "tinker-telemetry test server");
        let server_key = KeyPair::generate().unwrap();
        let server_cert = server.signed_by(&server_key, &issuer).unwrap();
        TestCa {
            pem: ca_cert.pem(),
            server_chain: vec![server_cert.der().clone()],
            server_key: PrivatePkcs8KeyDer::from(server_key.serialize_der()),
        }
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(self.server_chain.clone(), PrivateKeyDer::Pkcs8(self.server_key.clone_key()))
            .unwrap();
        Arc::new(config)
    }
}

impl RawServer {
    /// The same server behind TLS, with `ca`'s server certificate, at `https://127.0.0.1:PORT`.
    /// A client that refuses the certificate leaves a connection and no request.
    pub fn tls(ca: &TestCa, plan: impl Fn(usize) -> Raw + Send + Sync + 'static) -> RawServer {
        let config = ca.server_config();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        RawServer::serving(listener, "https", plan, move |tcp, state| {
            let connection = rustls::ServerConnection::new(Arc::clone(&config)).unwrap();
            let _ = raw_serve(rustls::StreamOwned::new(connection, tcp), state);
        })
    }
}

#[derive(Default)]
struct Stalled {
    /// What each connection sent, in the order they were accepted.
    received: Mutex<Vec<Vec<u8>>>,
    changed: Condvar,
    stop: AtomicBool,
}

/// Accepts TCP connections on 127.0.0.1 and never writes a byte: a TLS client's handshake
/// stalls after its ClientHello. Keeps what each connection sent until the client hung up.
pub struct Stall {
    addr: SocketAddr,
    state: Arc<Stalled>,
}

impl Stall {
    pub fn start() -> Stall {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Stalled::default());
        let accepting = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stop.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(mut stream) = stream else { continue };
                let slot = {
                    let mut received = accepting.received.lock().unwrap();
                    received.push(Vec::new());
                    received.len() - 1
                };
                accepting.changed.notify_all();
                let state = Arc::clone(&accepting);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    while let Ok(n @ 1..) = stream.read(&mut buf) {
                        state.received.lock().unwrap()[slot].extend_from_slice(&buf[..n]);
                        state.changed.notify_all();
                    }
                });
            }
        });
        Stall { addr, state }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn uri(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.state.received.lock().unwrap().len()
    }

    /// Everything every connection sent, one entry per connection.
    pub fn received(&self) -> Vec<Vec<u8>> {
        self.state.received.lock().unwrap().clone()
    }

    /// Waits until `n` connections have sent something (their ClientHello); returns when.
    pub fn wait_hellos(&self, n: usize) -> Instant {
        let until = Instant::now() + PATIENCE;
        let mut received = self.state.received.lock().unwrap();
        while received.iter().filter(|r| !r.is_empty()).count() < n {
            let left = until.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "waited {PATIENCE:?} for {n} ClientHellos");
            received = self.state.changed.wait_timeout(received, left).unwrap().0;
        }
        Instant::now()
    }
}

impl Drop for Stall {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        let _ = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_millis(100));
    }
}
