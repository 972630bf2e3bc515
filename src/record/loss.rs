//! Records about data the kernel did not deliver: LOST, LOST_SAMPLES, THROTTLE/UNTHROTTLE.

use crate::bytes::Bytes;

/// PERF_RECORD_LOST: records dropped because the ring was full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lost {
    /// Id of the event whose records were lost.
    pub id: u64,
    /// How many were lost.
    pub lost: u64,
}

impl Lost {
    #[inline]
    pub(crate) fn parse(body: &Bytes<'_>) -> Self {
        Lost {
            id: body.u64(0).unwrap_or(0),
            lost: body.u64(8).unwrap_or(0),
        }
    }
}

/// PERF_RECORD_LOST_SAMPLES: samples dropped (e.g. by a hardware buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LostSamples {
    /// How many were lost.
    pub lost: u64,
}

impl LostSamples {
    #[inline]
    pub(crate) fn parse(body: &Bytes<'_>) -> Self {
        LostSamples {
            lost: body.u64(0).unwrap_or(0),
        }
    }
}

/// PERF_RECORD_THROTTLE / UNTHROTTLE: sampling was (un)throttled for an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// When.
    pub time: u64,
    /// Event id.
    pub id: u64,
    /// Stream id.
    pub stream_id: u64,
}

impl Throttle {
    #[inline]
    pub(crate) fn parse(body: &Bytes<'_>) -> Self {
        Throttle {
            time: body.u64(0).unwrap_or(0),
            id: body.u64(8).unwrap_or(0),
            stream_id: body.u64(16).unwrap_or(0),
        }
    }
}
