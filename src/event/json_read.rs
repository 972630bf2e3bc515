//! The NDJSON reader: lines of the stream back into events.

use super::{Body, Cause, Event};
use crate::nsset::{link_name, NsSet, MAX_LINKS};
use crate::record::{NsLink, NS_KINDS};
use std::borrow::Cow;

/// Reads events back from NDJSON lines (what `nswatch record` and `report --format ndjson`
/// write), so that exporters take either input through one [`Event`] shape. Lines of
/// types this schema version does not define (the model's "container_start" and friends,
/// which a reader recomputes, or a later version's) give `None`; extra fields are ignored,
/// as later versions only add fields.
///
/// ```
/// use nswatch::event::JsonReader;
/// use nswatch::Body;
///
/// let mut reader = JsonReader::new();
/// let line = r#"{"type":"fork","time_ns":5,"cpu":0,"pid":10,"tid":10,"ppid":1,"ptid":1}"#;
/// let ev = reader.read(line)?.expect("a fork");
/// assert_eq!(ev.body, Body::Fork { ppid: 1, ptid: 1 });
/// assert_eq!(ev.tid, Some(10));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct JsonReader {
    /// The set of the last "namespaces" line, which its event borrows.
    ns: NsSet,
    /// The cause of the last line that had one, which its event borrows.
    cause: Option<Cause>,
}

/// Why a line could not be read as an event.
///
/// ```
/// use nswatch::event::JsonReader;
///
/// let mut reader = JsonReader::new();
/// let err = reader.read("{not json}\n").unwrap_err();
/// println!("line 1: {err}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonLineError(pub String);

impl std::fmt::Display for JsonLineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JsonLineError {}

impl JsonReader {
    /// A reader with no state.
    pub fn new() -> Self {
        Self::default()
    }

    /// True for a line given without its newline that could not be read: the end of an
    /// input whose writer was killed mid-line (a recording SIGKILLed mid-write), which
    /// readers take as the input's end, everything before it whole, rather than as damage.
    pub fn is_cut_off(line: &str) -> bool {
        !line.ends_with('\n')
    }

    /// The event of one NDJSON line, `None` for a type outside the schema.
    pub fn read<'b>(&'b mut self, line: &str) -> Result<Option<Event<'b>>, JsonLineError> {
        use serde_json::Value;
        let bad = |what: String| JsonLineError(what);
        let v: Value = serde_json::from_str(line).map_err(|e| bad(format!("bad JSON: {e}")))?;
        let ty = v
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no \"type\"".into()))?;
        let opt_u64 = |k: &str| -> Result<Option<u64>, JsonLineError> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(x) => x
                    .as_u64()
                    .map(Some)
                    .ok_or_else(|| bad(format!("{ty}: \"{k}\" is not an unsigned integer"))),
            }
        };
        let opt_u32 = |k: &str| -> Result<Option<u32>, JsonLineError> {
            opt_u64(k)?
                .map(|n| {
                    u32::try_from(n)
                        .map_err(|_| bad(format!("{ty}: \"{k}\" = {n} is out of range")))
                })
                .transpose()
        };
        let need = |k: &str| -> Result<u64, JsonLineError> {
            opt_u64(k)?.ok_or_else(|| bad(format!("{ty}: \"{k}\" missing")))
        };
        let need_u32 = |k: &str| -> Result<u32, JsonLineError> {
            opt_u32(k)?.ok_or_else(|| bad(format!("{ty}: \"{k}\" missing")))
        };
        let string = |k: &str| -> Option<Cow<'static, str>> {
            v.get(k)
                .and_then(Value::as_str)
                .map(|s| Cow::Owned(s.to_string()))
        };
        let body = match ty {
            "namespaces" => {
                let ns = v
                    .get("ns")
                    .and_then(Value::as_object)
                    .ok_or_else(|| bad("namespaces: \"ns\" missing".into()))?;
                let mut links = Vec::with_capacity(NS_KINDS.len());
                for i in 0..MAX_LINKS {
                    let Some(l) = ns.get(link_name(i)) else {
                        break;
                    };
                    let field = |f: &str| {
                        l.get(f).and_then(Value::as_u64).ok_or_else(|| {
                            bad(format!("namespaces: ns.{}.{f} missing", link_name(i)))
                        })
                    };
                    links.push(NsLink {
                        dev: field("dev")?,
                        ino: field("ino")?,
                    });
                }
                self.ns = NsSet::from_links(links);
                self.cause = match v.get("cause") {
                    Some(c) => Some(read_cause(c, &v).map_err(bad)?),
                    None => None,
                };
                Body::Namespaces {
                    ns: &self.ns,
                    comm: string("comm"),
                    cause: self.cause.as_ref(),
                }
            }
            "ns_syscall" => {
                // The call's fields are the event's own.
                self.cause = Some(read_cause(&v, &v).map_err(bad)?);
                Body::NsSyscall {
                    call: self.cause.as_ref().expect("just set"),
                }
            }
            "ns_syscall_lost" => Body::NsSyscallLost {
                lost: need("lost")?,
            },
            "fork" | "exit" => {
                let (ppid, ptid) = (need_u32("ppid")?, need_u32("ptid")?);
                if ty == "fork" {
                    Body::Fork { ppid, ptid }
                } else {
                    Body::Exit { ppid, ptid }
                }
            }
            "comm" => Body::Comm {
                comm: string("comm").ok_or_else(|| bad("comm: \"comm\" missing".into()))?,
                exec: v.get("exec").and_then(Value::as_bool).unwrap_or(false),
            },
            "cgroup" => Body::Cgroup {
                id: need("id")?,
                path: string("path").unwrap_or_default(),
            },
            "lost" => Body::Lost {
                lost: need("lost")?,
            },
            "lost_samples" => Body::LostSamples {
                lost: need("lost")?,
            },
            "sample" => Body::Sample {
                ip: opt_u64("ip")?,
                period: opt_u64("period")?,
                callchain: v
                    .get("callchain")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_u64).collect()),
            },
            _ => return Ok(None),
        };
        Ok(Some(Event {
            time_ns: opt_u64("time_ns")?,
            cpu: opt_u32("cpu")?,
            pid: opt_u32("pid")?,
            tid: opt_u32("tid")?,
            synthesized: v
                .get("synthesized")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            body,
        }))
    }
}

/// A cause object `c` of the event line `ev` (pid, tid, cpu and comm are the event's).
fn read_cause(c: &serde_json::Value, ev: &serde_json::Value) -> Result<Cause, String> {
    let n = |k: &str| ev.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0) as u32;
    let comm = ev
        .get("comm")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    Cause::from_json(c, n("pid"), n("tid"), n("cpu"), comm)
}
