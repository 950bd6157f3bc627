//! Measurements of the whole process for `performance.summary`: resident memory, CPU time
//! and threads, read from `/proc/self` on Linux, and the run queue of the tokio runtime the
//! reporter was built in. Elsewhere, or where `/proc` cannot be read, the summary leaves out
//! what it could not measure.

use super::report::{ProcessMeasurements, RuntimeMeasurements};

/// Clock ticks per second of `/proc/self/stat`'s CPU times: `USER_HZ`, 100 on every Linux
/// architecture.
const USER_HZ: f64 = 100.0;

/// Resident memory, CPU time and threads, each when it could be read; no runtime.
pub(crate) fn measurements() -> ProcessMeasurements {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    ProcessMeasurements {
        resident_memory_bytes: status_field(&status, "VmRSS:").map(|kb| kb * 1024),
        cpu_time_s: std::fs::read_to_string("/proc/self/stat").ok().as_deref().and_then(cpu_seconds),
        threads: status_field(&status, "Threads:"),
        tokio: None,
    }
}

/// A tokio runtime's worker threads, the tasks spawned on it and not yet finished, and the
/// tasks waiting in its shared run queue for a worker (a program's run queue, as the BEAM's
/// is an Elixir program's).
pub(crate) fn runtime(handle: &tokio::runtime::Handle) -> RuntimeMeasurements {
    let metrics = handle.metrics();
    RuntimeMeasurements {
        workers: metrics.num_workers(),
        alive_tasks: metrics.num_alive_tasks(),
        global_queue_depth: metrics.global_queue_depth(),
    }
}

/// The number after `key` on its line of `/proc/self/status` (`VmRSS:   1234 kB`).
fn status_field(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// User plus system CPU time from `/proc/self/stat`, in seconds. The fields are counted after
/// the command name, which is in parentheses and may hold spaces.
fn cpu_seconds(stat: &str) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // After the name: state(3) … utime is field 14 and stime 15 of the whole line.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_lines_parse() {
        let stat =
            "4242 (my (odd) prog) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 3 0 100 2000000 500";
        assert_eq!(cpu_seconds(stat), Some(3.0));
        assert_eq!(cpu_seconds("garbage"), None);
        let status = "Name:\tx\nVmRSS:\t   2048 kB\nThreads:\t7\n";
        assert_eq!(status_field(status, "VmRSS:"), Some(2048));
        assert_eq!(status_field(status, "Threads:"), Some(7));
        assert_eq!(status_field(status, "VmSwap:"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_measured() {
        let m = measurements();
        assert!(m.resident_memory_bytes.unwrap() > 1024 * 1024);
        assert!(m.threads.unwrap() >= 1);
        assert!(m.cpu_time_s.unwrap() >= 0.0);
    }
}
