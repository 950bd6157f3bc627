//! Event timestamps: a cheap read of the CPU's time-stamp counter on the emitting thread,
//! turned into wall-clock time by the uploader.
//!
//! `SystemTime::now()` costs 20–35 ns on a virtual machine, a sixth of a captured event;
//! reading the counter through [`quanta`] costs a few. The counter needs calibrating against
//! the OS clock (at least half a millisecond of spinning, at most 200 ms), which happens once
//! per process on a thread of its own, so that `build()` never waits for it: until it is done,
//! events are stamped with `SystemTime::now()`. Without an invariant time-stamp counter,
//! quanta reads the OS's monotonic clock instead.
//!
//! The uploader converts counter readings against an [`Anchor`]: a counter reading and the
//! wall-clock time taken together, each time it takes events. An event is seldom more than a
//! flush interval older than its anchor, so the counter's calibration error (a few parts per
//! million) moves it by microseconds at most; a step of the wall clock between the event and
//! its anchor moves it with the clock.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering::AcqRel, Ordering::Release};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::macros::format_description;

static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
static CALIBRATING: AtomicBool = AtomicBool::new(false);

/// Marks a [`Stamp`] holding a counter reading rather than nanoseconds since the epoch.
const TICKS: u64 = 1 << 63;

/// Starts calibrating the counter on a thread of its own, once per process.
pub(crate) fn calibrate_in_background() {
    if CALIBRATING.swap(true, AcqRel) {
        return;
    }
    let spawned = std::thread::Builder::new().name("tinker-telemetry-clock".into()).spawn(|| {
        CLOCK.get_or_init(quanta::Clock::new);
    });
    if spawned.is_err() {
        // Events keep being stamped with `SystemTime::now()`; a later build tries again.
        CALIBRATING.store(false, Release);
    }
}

/// When an event happened: nanoseconds since the Unix epoch, or a counter reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp(u64);

impl Stamp {
    /// Now, as cheaply as the process can tell.
    #[inline]
    pub(crate) fn now() -> Stamp {
        match CLOCK.get() {
            Some(clock) => Stamp(clock.raw() | TICKS),
            None => Stamp::from(SystemTime::now()),
        }
    }
}

impl From<SystemTime> for Stamp {
    fn from(at: SystemTime) -> Stamp {
        // Before 1970, or past 2262: not from a sane clock; keep the epoch.
        let nanos = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        Stamp(u64::try_from(nanos).unwrap_or(0) & !TICKS)
    }
}

/// A counter reading and the wall-clock time, taken together: what the uploader converts
/// counter readings against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Anchor {
    raw: Option<u64>,
    wall: SystemTime,
}

impl Anchor {
    pub(crate) fn now() -> Anchor {
        let raw = CLOCK.get().map(quanta::Clock::raw);
        Anchor { raw, wall: SystemTime::now() }
    }

    /// The wall-clock time of `stamp`.
    pub(crate) fn wall(&mut self, stamp: Stamp) -> SystemTime {
        if stamp.0 & TICKS == 0 {
            return UNIX_EPOCH + Duration::from_nanos(stamp.0);
        }
        let raw = stamp.0 & !TICKS;
        let Some(clock) = CLOCK.get() else { return self.wall };
        let anchor = match self.raw {
            Some(anchor) => anchor,
            // Taken before the counter was calibrated: take it again.
            None => {
                *self = Anchor::now();
                self.raw.unwrap_or(raw)
            }
        };
        let at = if raw <= anchor {
            self.wall.checked_sub(clock.delta(raw, anchor))
        } else {
            self.wall.checked_add(clock.delta(anchor, raw))
        };
        at.unwrap_or(self.wall)
    }
}

/// Formats a wall-clock time as RFC 3339 UTC with exactly six fractional digits,
/// `2026-11-21T05:38:37.548134Z`.
pub(crate) fn format_timestamp(at: SystemTime) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    // A time before 1970 or past year 9999 cannot come from a sane clock; fall back to the
    // epoch rather than fail the event.
    OffsetDateTime::from(at).format(&format).unwrap_or_else(|_| String::from("1970-01-01T00:00:00.000000Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_clock_stamps_round_trip_to_the_nanosecond() {
        let at = UNIX_EPOCH + Duration::new(1_795_239_517, 123_456_789);
        assert_eq!(Anchor::now().wall(Stamp::from(at)), at);
        assert_eq!(Anchor::now().wall(Stamp::from(UNIX_EPOCH - Duration::from_secs(1))), UNIX_EPOCH);
    }

    #[test]
    fn counter_stamps_convert_to_the_time_they_were_taken() {
        CLOCK.get_or_init(quanta::Clock::new);
        let before = SystemTime::now();
        let stamp = Stamp::now();
        let after = SystemTime::now();
        assert_ne!(stamp.0 & TICKS, 0, "a calibrated clock stamps with the counter");
        std::thread::sleep(Duration::from_millis(20));
        let at = Anchor::now().wall(stamp);
        // Within the calibration's error, which is far below a millisecond over 20 ms.
        let slack = Duration::from_millis(1);
        assert!(at + slack >= before && at <= after + slack, "{at:?} not in {before:?}..{after:?}");
    }

    #[test]
    fn timestamp_always_has_six_fraction_digits() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_239_517);
        assert_eq!(format_timestamp(at), "2026-11-21T05:38:37.000000Z");
        let at = at + Duration::from_nanos(548_134_999);
        assert_eq!(format_timestamp(at), "2026-11-21T05:38:37.548134Z");
    }
}
