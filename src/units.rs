//! Durations and times as people write and read them: the command line's durations
//! (`1m30s`, `500ms`, `500us`, through [`humantime`]) and wall-clock times (RFC 3339) for
//! the CLOCK_MONOTONIC times that perf and nswatch record.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses a duration: a plain number is seconds (`10`, `1.5`), anything else is
/// humantime's notation: numbers with units, run together or spaced (`1m30s`, `500ms`,
/// `500us`, `2h 5m`, `1.5s`). Units: ns, us (µs), ms, s, m (min), h, d.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if let Ok(v) = t.parse::<f64>() {
        if !(0.0..1e9).contains(&v) {
            return Err(format!("out of range: {s:?}"));
        }
        return Ok(Duration::from_secs_f64(v));
    }
    let d = humantime::parse_duration(t)
        .map_err(|e| format!("not a duration: {s:?} ({e}; e.g. 10, 1m30s, 500ms, 500us)"))?;
    if d.as_secs() >= 1_000_000_000 {
        return Err(format!("out of range: {s:?}"));
    }
    Ok(d)
}

/// How times are written in text and NDJSON outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimeStyle {
    /// The recording's clock (CLOCK_MONOTONIC: seconds since boot), as perf prints it.
    #[default]
    Mono,
    /// Wall-clock time, RFC 3339 with nanoseconds, UTC (`2026-12-07T03:41:07.123456789Z`).
    Wall,
}

/// Turns CLOCK_MONOTONIC times into wall-clock times: the offset between the two clocks,
/// read once. It holds for a recording made on this machine since its last boot (the
/// monotonic clock starts at boot); a clock step (NTP, `date -s`) after the recording
/// moves the answer by that step.
#[derive(Clone, Copy, Debug)]
pub struct WallClock {
    /// Wall-clock ns at monotonic 0.
    offset_ns: i128,
}

impl WallClock {
    /// The offset between the two clocks now, read as CLOCK_REALTIME between two reads of
    /// CLOCK_MONOTONIC.
    pub fn now() -> WallClock {
        let mono = |clock| {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: clock_gettime writes the timespec it is given.
            unsafe { libc::clock_gettime(clock, &mut ts) };
            ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128
        };
        let m0 = mono(libc::CLOCK_MONOTONIC);
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128);
        let m1 = mono(libc::CLOCK_MONOTONIC);
        WallClock {
            offset_ns: wall - (m0 + m1) / 2,
        }
    }

    /// A clock whose monotonic 0 is `offset_ns` after the Unix epoch (for tests).
    pub fn with_offset(offset_ns: i128) -> WallClock {
        WallClock { offset_ns }
    }

    /// Nanoseconds since the Unix epoch at monotonic time `mono_ns`.
    pub fn wall_ns(&self, mono_ns: u64) -> u64 {
        (mono_ns as i128 + self.offset_ns).clamp(0, u64::MAX as i128) as u64
    }

    /// `mono_ns` as RFC 3339 text, UTC, with nanoseconds.
    pub fn rfc3339(&self, mono_ns: u64) -> String {
        rfc3339(self.wall_ns(mono_ns))
    }
}

/// Nanoseconds since the Unix epoch as RFC 3339 text, UTC, with nanoseconds.
pub fn rfc3339(unix_ns: u64) -> String {
    humantime::format_rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(unix_ns)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_with_units_and_plain_seconds() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5"), Ok(ms(1500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn wall_clock_text_is_rfc3339() {
        let c = WallClock::with_offset(1_000_000_000_000_000_000);
        assert_eq!(c.rfc3339(123_456_789), "2001-09-09T01:46:40.123456789Z");
    }
}
