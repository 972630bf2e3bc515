//! Records about data the kernel did not deliver: LOST, LOST_SAMPLES, THROTTLE/UNTHROTTLE.

use crate::bytes::Bytes;

/// PERF_RECORD_LOST: records dropped because the ring was full.
///
/// ```
/// use nswatch::record::{Lost, Record, SampleId};
/// use nswatch::{Body, EventBuilder};
///
/// let mut builder = EventBuilder::new();
/// let rec = Record::Lost(Lost { id: 7, lost: 12 });
/// let ev = builder.event(&rec, &SampleId::default()).unwrap();
/// assert_eq!(ev.body, Body::Lost { lost: 12 });
/// ```
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
///
/// ```
/// use nswatch::record::{LostSamples, Record, SampleId};
/// use nswatch::{Body, EventBuilder};
///
/// let mut builder = EventBuilder::new();
/// let rec = Record::LostSamples(LostSamples { lost: 3 });
/// let ev = builder.event(&rec, &SampleId::default()).unwrap();
/// assert_eq!(ev.body, Body::LostSamples { lost: 3 });
/// ```
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
///
/// ```
/// use nswatch::record::{Record, SampleId, Throttle};
/// use nswatch::EventBuilder;
///
/// let mut builder = EventBuilder::new();
/// let rec = Record::Throttle(Throttle { time: 5, id: 7, stream_id: 7 });
/// assert!(builder.event(&rec, &SampleId::default()).is_none()); // no event of the schema
/// ```
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
