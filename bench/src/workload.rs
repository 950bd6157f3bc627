//! The HTTP requests the analysis benchmarks record: about twenty paths a Tinker client
//! calls, whose ids template to five routes, with varied durations and an occasional 500.
//! The same sequence goes through tinker-telemetry's aggregation and through its peers.

use std::time::Duration;

/// One request the workload repeats: its method, its raw path, and the route template the
/// crate's rule makes of it (what the peers are given as `url.template`).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: &'static str,
    pub path: &'static str,
    pub route: &'static str,
}

const SAMPLE: &str = "/api/v1/sampling_sessions/{id}/sample";
const FORWARD_BACKWARD: &str = "/api/v1/training_runs/{id}/forward_backward";
const OPTIM_STEP: &str = "/api/v1/training_runs/{id}/optim_step";
const RETRIEVE: &str = "/api/v1/futures/retrieve";
const HEARTBEAT: &str = "/api/v1/sessions/{id}/heartbeat";

/// The twenty requests, in the order they are cycled through: sampling most often, as in a
/// reinforcement-learning loop.
pub const REQUESTS: [Request; 20] = [
    Request { method: "POST", path: "/api/v1/sampling_sessions/17/sample", route: SAMPLE },
    Request { method: "POST", path: "/api/v1/sampling_sessions/18/sample", route: SAMPLE },
    Request { method: "POST", path: "/api/v1/futures/retrieve", route: RETRIEVE },
    Request { method: "POST", path: "/api/v1/sampling_sessions/19/sample", route: SAMPLE },
    Request { method: "POST", path: "/api/v1/sampling_sessions/20/sample", route: SAMPLE },
    Request {
        method: "POST",
        path: "/api/v1/training_runs/3f2a9c1e-5b4e-4d7a-9c1e-0b9f0c7d2e11/forward_backward",
        route: FORWARD_BACKWARD,
    },
    Request { method: "POST", path: "/api/v1/sampling_sessions/21/sample", route: SAMPLE },
    Request { method: "POST", path: "/api/v1/futures/retrieve", route: RETRIEVE },
    Request { method: "POST", path: "/api/v1/sampling_sessions/22/sample", route: SAMPLE },
    Request {
        method: "POST",
        path: "/api/v1/training_runs/3f2a9c1e-5b4e-4d7a-9c1e-0b9f0c7d2e11/optim_step",
        route: OPTIM_STEP,
    },
    Request { method: "POST", path: "/api/v1/sampling_sessions/23/sample", route: SAMPLE },
    Request { method: "POST", path: "/api/v1/sessions/6f1c2a9e-5b4e-4d7a/heartbeat", route: HEARTBEAT },
    Request { method: "POST", path: "/api/v1/sampling_sessions/24/sample", route: SAMPLE },
    Request { method: "POST", path: "/api/v1/futures/retrieve", route: RETRIEVE },
    Request { method: "POST", path: "/api/v1/sampling_sessions/25/sample", route: SAMPLE },
    Request {
        method: "POST",
        path: "/api/v1/training_runs/0b9f0c7d-2e11-4d7a-9c1e-6f1c2a9e5b4e/forward_backward",
        route: FORWARD_BACKWARD,
    },
    Request { method: "POST", path: "/api/v1/sampling_sessions/26/sample?seed=7", route: SAMPLE },
    Request { method: "POST", path: "/api/v1/futures/retrieve", route: RETRIEVE },
    Request {
        method: "POST",
        path: "/api/v1/training_runs/0b9f0c7d-2e11-4d7a-9c1e-6f1c2a9e5b4e/optim_step",
        route: OPTIM_STEP,
    },
    Request { method: "POST", path: "/api/v1/sessions/0b9f0c7d-2e11-4d7a/heartbeat", route: HEARTBEAT },
];

/// The host every request goes to (`server.address`).
pub const SERVER_ADDRESS: &str = "tinker.example";

/// The bucket bounds, in seconds, the peers' histograms are given (OpenTelemetry's
/// recommendation for `http.client.request.duration`).
pub const BOUNDARIES_S: [f64; 14] =
    [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

/// How many distinct durations the workload cycles through.
pub const DURATIONS: usize = 4096;

/// [`DURATIONS`] durations spread evenly on a log scale from 2 ms to 8 s (a fixed
/// pseudo-random sequence, the same on every run).
#[must_use]
pub fn durations() -> Vec<Duration> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..DURATIONS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            Duration::from_secs_f64(0.002 * (4000f64).powf(u))
        })
        .collect()
}

/// The status of the `i`-th request: a 500 one time in 50, else 200.
#[inline]
#[must_use]
pub fn status(i: u64) -> u16 {
    if i % 50 == 49 { 500 } else { 200 }
}

/// The status as the label text the peers are given.
#[inline]
#[must_use]
pub fn status_text(status: u16) -> &'static str {
    if status == 500 { "500" } else { "200" }
}

/// `n` distinct paths that do not template away (letters only, under 33 bytes per segment),
/// `/api/v1/<ten letters>`: past the key cap they all fold into `_other`.
#[must_use]
pub fn distinct_paths(n: usize) -> Vec<String> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut name = String::from("/api/v1/r");
            let mut y = x;
            for _ in 0..10 {
                name.push(char::from(b'a' + (y % 26) as u8));
                y /= 26;
            }
            name
        })
        .collect()
}

/// The crate's route rule (`src/analysis/operation.rs`, `template`), so that the peers can be
/// measured doing the same work on the raw path.
pub fn template(path: &str, out: &mut String) {
    tinker_telemetry::AnalysisBench::template(path, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_path_templates_to_its_route() {
        let mut out = String::new();
        for r in &REQUESTS {
            template(r.path, &mut out);
            assert_eq!(out, r.route, "{}", r.path);
        }
        let routes: std::collections::HashSet<_> = REQUESTS.iter().map(|r| r.route).collect();
        assert_eq!(routes.len(), 5);
    }

    #[test]
    fn distinct_paths_stay_distinct_routes() {
        let paths = distinct_paths(100_000);
        let mut out = String::new();
        let mut routes = std::collections::HashSet::new();
        for p in &paths {
            template(p, &mut out);
            assert_eq!(&out, p);
            routes.insert(out.clone());
        }
        assert_eq!(routes.len(), 100_000);
    }

    #[test]
    fn durations_span_the_range() {
        let d = durations();
        let (lo, hi) = (d.iter().min().unwrap(), d.iter().max().unwrap());
        assert!(lo.as_secs_f64() < 0.003 && hi.as_secs_f64() > 5.0, "{lo:?} {hi:?}");
    }
}
