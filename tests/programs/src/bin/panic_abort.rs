//! A program built with `panic = "abort"`: a session to `$TINKER_BASE_URL` with two events,
//! the panic hook, then a panic, which aborts the process once the hook returns.

use tinker_telemetry_programs::reporter_with_hook;

fn main() {
    // Held to the panic: the hook reports through it.
    let (_guard, _handle) = reporter_with_hook("abort-session", "before.panic", 2);
    panic!("boom, with panic = abort");
}
