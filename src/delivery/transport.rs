//! The seam between the retry logic and the network: [`Transport`] sends one request body
//! once and says what came back, as sentry's `Transport` and opentelemetry's `LogExporter`
//! do. [`HttpTransport`](super::http::HttpTransport) is the real one; tests script answers
//! with [`testing::Scripted`].

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::diagnose::Failure;

/// A boxed, sendable future: what a [`Transport`] returns.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What one attempt came back with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The server answered with a status line.
    Status { status: u16, retry_after: Option<Duration> },
    /// No status: connection refused or reset, DNS failure, TLS failure, timeout.
    Failed(Failure),
}

/// Sends one request body, once.
pub(crate) trait Transport: Send + Sync + std::fmt::Debug {
    /// POSTs `body` with its idempotency key, bounded by `timeout` from start to the end of
    /// the response.
    fn post<'a>(
        &'a self,
        body: Vec<u8>,
        idempotency_key: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Answer>;
}

#[cfg(test)]
pub(crate) mod testing {
    //! A transport that answers from a script and records what it was sent.

    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use tokio::time::Instant;

    use super::{Answer, BoxFuture, Duration, Transport};

    /// One request as the scripted transport saw it.
    #[derive(Debug, Clone)]
    pub(crate) struct Call {
        pub(crate) at: Instant,
        pub(crate) events: usize,
        pub(crate) key: String,
        pub(crate) timeout: Duration,
    }

    /// Answers each request with the next scripted answer (then 200), after `latency`.
    #[derive(Debug, Default)]
    pub(crate) struct Scripted {
        pub(crate) answers: Mutex<VecDeque<Answer>>,
        pub(crate) calls: Arc<Mutex<Vec<Call>>>,
        pub(crate) latency: Duration,
    }

    impl Scripted {
        pub(crate) fn new(answers: impl IntoIterator<Item = Answer>) -> Self {
            Scripted { answers: Mutex::new(answers.into_iter().collect()), ..Scripted::default() }
        }

        /// Where the calls are recorded, to read once the transport is boxed.
        pub(crate) fn recorder(&self) -> Arc<Mutex<Vec<Call>>> {
            Arc::clone(&self.calls)
        }
    }

    /// A failure without a status, as a refused connection gives.
    pub(crate) fn failed() -> Answer {
        Answer::Failed(super::Failure {
            kind: crate::handoff::stats::DeliveryErrorKind::Connect,
            words: "connect: connection refused".into(),
        })
    }

    /// A status without `Retry-After`.
    pub(crate) fn status(status: u16) -> Answer {
        Answer::Status { status, retry_after: None }
    }

    impl Transport for Scripted {
        fn post<'a>(&'a self, body: Vec<u8>, key: &'a str, timeout: Duration) -> BoxFuture<'a, Answer> {
            Box::pin(async move {
                let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let events = json["events"].as_array().map_or(0, Vec::len);
                let call = Call { at: Instant::now(), events, key: key.to_owned(), timeout };
                self.calls.lock().unwrap().push(call);
                let answer = self.answers.lock().unwrap().pop_front().unwrap_or(status(200));
                let wait = self.latency.min(timeout);
                tokio::time::sleep(wait).await;
                if wait < self.latency { failed() } else { answer }
            })
        }
    }
}
