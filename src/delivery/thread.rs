//! The uploader's thread: a dedicated OS thread running a current-thread tokio runtime that
//! owns the HTTP client, silenced so that the HTTP stack's own tracing output never reaches
//! this (or any) layer and cannot cause more requests.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::http::HttpTransport;
use super::tls::AddedRoots;
use super::uploader::{UploadConfig, Uploader};
use crate::analysis::analyzer::Analyzer;
use crate::errors::build::BuildError;
use crate::handoff::Handoff;
use crate::handoff::control::Control;

thread_local! {
    static SILENCED: std::cell::RefCell<Option<tracing::subscriber::DefaultGuard>> =
        const { std::cell::RefCell::new(None) };
}

/// Makes `NoSubscriber` this thread's default for the rest of its life.
fn silence_this_thread() {
    let guard = tracing::subscriber::set_default(tracing::subscriber::NoSubscriber::default());
    SILENCED.with(|s| *s.borrow_mut() = Some(guard));
}

/// Starts the uploader thread. Returns once its HTTP client is built, or with the reason it
/// could not be.
pub(crate) fn start(
    config: UploadConfig,
    roots: AddedRoots,
    handoff: Arc<Handoff>,
    control: mpsc::UnboundedReceiver<Control>,
    analyzer: Analyzer,
) -> Result<std::thread::JoinHandle<()>, BuildError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Result<(), BuildError>>(1);
    let thread = std::thread::Builder::new()
        .name("tinker-telemetry".into())
        .spawn(move || {
            silence_this_thread();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name("tinker-telemetry-blocking")
                .on_thread_start(silence_this_thread)
                .build();
            let runtime = match runtime {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(BuildError::Runtime(e)));
                    return;
                }
            };
            let transport = match HttpTransport::new(config.endpoint.clone(), &config.api_key, &roots) {
                Ok(t) => t,
                Err(e) => {
                    let _ = ready_tx.send(Err(BuildError::Client(Box::new(e))));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            let uploader = Uploader::new(config, handoff, Box::new(transport), analyzer);
            runtime.block_on(uploader.run(control));
            // Do not wait for a blocking DNS lookup that may never return.
            runtime.shutdown_background();
        })
        .map_err(BuildError::Runtime)?;
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(thread),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(BuildError::Runtime(std::io::Error::other("the uploader thread exited during start-up")))
        }
    }
}
