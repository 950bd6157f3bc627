//! The transport over HTTP: reqwest, one POST per attempt, its status and its `Retry-After`.

use std::time::{Duration, SystemTime};

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER, USER_AGENT};

use super::diagnose;
use super::retry::parse_retry_after;
use super::tls::{self, AddedRoots};
use super::transport::{Answer, BoxFuture, Transport};

/// The `User-Agent` this crate sends.
pub(crate) const USER_AGENT_VALUE: &str = concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));

/// The reqwest client and what every request carries.
#[derive(Debug)]
pub(crate) struct HttpTransport {
    client: reqwest::Client,
    endpoint: reqwest::Url,
}

impl HttpTransport {
    pub(crate) fn new(
        endpoint: reqwest::Url,
        api_key: &str,
        roots: &AddedRoots,
    ) -> Result<Self, reqwest::Error> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        // The builder checked the key is a valid header value.
        if let Ok(mut key) = HeaderValue::from_str(api_key) {
            key.set_sensitive(true);
            headers.insert("x-api-key", key);
        }
        let mut client = reqwest::Client::builder();
        // Proxy variables are meant for the outside world: through one, a loopback request
        // (plain `http://`, the key in a header) would hand the key to the proxy.
        if crate::urls::is_loopback(&endpoint) {
            client = client.no_proxy();
        }
        let client = tls::trust(client, roots)
            .default_headers(headers)
            // A POST must never turn into a GET to somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            // One attempt is one request: `send.rs` counts and paces the retries.
            .retry(reqwest::retry::never())
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(HttpTransport { client, endpoint })
    }
}

impl Transport for HttpTransport {
    /// POSTs `body` once, bounded by `timeout` from start to the end of the response.
    ///
    /// A 2xx is a 2xx even when its body is empty, not JSON, or cut short: the server took
    /// the events, and sending them again would deliver them twice.
    fn post<'a>(
        &'a self,
        body: Vec<u8>,
        idempotency_key: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Answer> {
        Box::pin(self.post_once(body, idempotency_key, timeout))
    }
}

impl HttpTransport {
    async fn post_once(&self, body: Vec<u8>, idempotency_key: &str, timeout: Duration) -> Answer {
        let request = self
            .client
            .post(self.endpoint.clone())
            .header("x-idempotency-key", idempotency_key)
            .body(body)
            .timeout(timeout)
            .send();
        let response = match request.await {
            Ok(r) => r,
            Err(e) => return Answer::Failed(diagnose::failure(&e, e.is_timeout())),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        // Read the body to the end so the connection can be reused; its content and any
        // failure reading it do not change the answer.
        let _ = response.bytes().await;
        Answer::Status { status, retry_after }
    }
}
