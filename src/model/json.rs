//! How the model shows in the event stream (schema v1): the "container" field of task events
//! and the "container_start", "container_exit" and "container_rename" events.

use crate::event::{Event, JsonWriter, LineLabel};
use crate::json::{push_str, push_u64};
use crate::model::{Attributor, Change, ChangeKind, Group, GroupId, Naming};
use crate::nsset::link_name;

/// The "type" of a group change event.
pub fn change_type(kind: ChangeKind) -> &'static str {
    match kind {
        ChangeKind::Start => "container_start",
        ChangeKind::Exit => "container_exit",
        ChangeKind::Rename => "container_rename",
    }
}

/// Appends `ev` with the group it belongs to as "container" (and "runtime_id" when the
/// runtime's id is known): [`JsonWriter::write_labeled`] with the group as its label.
#[inline(always)]
pub fn write_labeled(
    json: &mut JsonWriter,
    ev: &Event<'_>,
    group: Option<&Group>,
    out: &mut Vec<u8>,
) {
    json.write_labeled(ev, group, out);
}

/// A group's fields in an event line. Its label never changes (its id says it); its
/// runtime id may, once named.
impl LineLabel for Group {
    #[inline]
    fn key(&self) -> (u64, Option<&str>) {
        (u64::from(self.id.0), self.naming.runtime_id.as_deref())
    }

    fn write_fields(&self, out: &mut Vec<u8>) {
        push_group_ref(out, self);
    }
}

fn push_group_ref(out: &mut Vec<u8>, g: &Group) {
    out.extend_from_slice(b",\"container\":");
    push_str(out, &g.label);
    if let Some(id) = &g.naming.runtime_id {
        out.extend_from_slice(b",\"runtime_id\":");
        push_str(out, id);
    }
}

fn push_opt_str(out: &mut Vec<u8>, key: &str, v: Option<&str>) {
    if let Some(v) = v {
        out.push(b',');
        push_str(out, key);
        out.push(b':');
        push_str(out, v);
    }
}

/// Appends the names of the namespace kinds in `mask` as a JSON array (`["net","mnt"]`).
pub(crate) fn push_kind_list(out: &mut Vec<u8>, mask: u32) {
    out.push(b'[');
    for (n, i) in (0..32).filter(|i| mask & (1 << i) != 0).enumerate() {
        if n > 0 {
            out.push(b',');
        }
        push_str(out, link_name(i));
    }
    out.push(b']');
}

/// Adds `"wall_time"` (RFC 3339, UTC, ns) to every event line of `out` from byte `from`
/// on, for the line's own `time_ns` (`--time wall`): a field added, the others unchanged.
/// A line without a time is left as it is.
pub fn add_wall_times(out: &mut Vec<u8>, from: usize, wall: &crate::units::WallClock) {
    const KEY: &[u8] = b"\"time_ns\":";
    let tail = out.split_off(from);
    for line in tail.split_inclusive(|&b| b == b'\n') {
        let time = memchr::memmem::find(line, KEY).and_then(|at| {
            let digits = &line[at + KEY.len()..];
            let n = digits.iter().take_while(|b| b.is_ascii_digit()).count();
            std::str::from_utf8(&digits[..n]).ok()?.parse::<u64>().ok()
        });
        match time {
            Some(t) if line.ends_with(b"}\n") => {
                out.extend_from_slice(&line[..line.len() - 2]);
                out.extend_from_slice(b",\"wall_time\":\"");
                out.extend_from_slice(wall.rfc3339(t).as_bytes());
                out.extend_from_slice(b"\"}\n");
            }
            _ => out.extend_from_slice(line),
        }
    }
}

/// Appends one group change as an event line.
pub fn write_change(model: &Attributor, change: &Change, out: &mut Vec<u8>) {
    let g = model.group(change.group);
    let leader = model.task(g.leader);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(change_type(change.kind).as_bytes());
    out.extend_from_slice(b"\",\"time_ns\":");
    push_u64(out, change.time_ns);
    out.extend_from_slice(b",\"cpu\":null,\"pid\":");
    push_u64(out, u64::from(leader.map_or(g.leader, |t| t.pid)));
    out.extend_from_slice(b",\"tid\":");
    push_u64(out, u64::from(g.leader));
    push_group_ref(out, g);
    out.extend_from_slice(b",\"kind\":\"");
    out.extend_from_slice(g.kind.name().as_bytes());
    out.extend_from_slice(b"\",\"name\":");
    push_str(out, g.name());
    push_opt_str(out, "runtime", g.naming.runtime.as_deref());
    push_opt_str(out, "image", g.naming.image.as_deref());
    push_opt_str(out, "namespace", g.naming.namespace.as_deref());
    push_opt_str(out, "pod_name", g.naming.pod_name.as_deref());
    push_opt_str(out, "pod_id", g.naming.pod_id.as_deref());
    push_opt_str(out, "pod_uid", g.naming.pod_uid.as_deref());
    push_opt_str(out, "cgroup", g.naming.cgroup.as_deref());
    push_opt_str(out, "creator", g.creator.as_deref());
    push_opt_str(
        out,
        "parent",
        model.parent_of(g.id).map(|p| model.group(p).label.as_str()),
    );
    if g.kernel_threads {
        out.extend_from_slice(b",\"kernel_threads\":true");
    }
    out.extend_from_slice(b",\"owns\":");
    push_kind_list(out, g.differs);
    if change.kind == ChangeKind::Exit {
        out.extend_from_slice(b",\"started_ns\":");
        push_u64(out, g.started_ns);
        if let Some(t) = g.ended_ns {
            out.extend_from_slice(b",\"last_task_ns\":");
            push_u64(out, t);
        }
    }
    out.extend_from_slice(b"}\n");
}

/// A group's naming as a recording announced it: a "container_start" or
/// "container_rename" line. A replay recomputes the groups from the task events (their
/// labels come out the same), but the names came from /proc and the runtimes' state at
/// recording time, which only these lines keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    /// The group's label ("ct-4026532301").
    pub label: String,
    /// Its naming: "name" (unless it only repeats the label), "runtime", "runtime_id",
    /// "image", "namespace", "pod_name", "pod_id", "pod_uid", "cgroup".
    pub naming: Naming,
    /// The command that created it ("creator").
    pub creator: Option<String>,
    /// The label of the group it is nested in ("parent").
    pub parent: Option<String>,
    /// A group of kernel threads alone ("kernel_threads": true).
    pub kernel_threads: bool,
}

impl Announced {
    /// The announcement of one NDJSON line; `None` for a line of another type, or one
    /// without a "container".
    pub fn from_line(line: &str) -> Option<Announced> {
        // Only the model's change lines can announce; they are few, the rest is skipped
        // without parsing.
        if !line.contains("\"container_start\"") && !line.contains("\"container_rename\"") {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        Self::from_json(&v)
    }

    /// The announcement of a parsed event line.
    pub fn from_json(v: &serde_json::Value) -> Option<Announced> {
        let ty = v.get("type")?.as_str()?;
        if ty != "container_start" && ty != "container_rename" {
            return None;
        }
        let label = v.get("container")?.as_str()?.to_string();
        let s = |k: &str| {
            v.get(k)
                .and_then(serde_json::Value::as_str)
                .map(String::from)
        };
        let naming = Naming {
            runtime: s("runtime"),
            runtime_id: s("runtime_id"),
            // The writer falls back to the label for a group with no name.
            name: s("name").filter(|n| *n != label),
            image: s("image"),
            namespace: s("namespace"),
            pod_name: s("pod_name"),
            pod_id: s("pod_id"),
            pod_uid: s("pod_uid"),
            cgroup: s("cgroup"),
        };
        Some(Announced {
            label,
            naming,
            creator: s("creator"),
            parent: s("parent"),
            kernel_threads: v.get("kernel_threads") == Some(&serde_json::Value::Bool(true)),
        })
    }
}

/// Names the groups of a model replaying a recording from the recording's announcements
/// ([`Announced`]). A start is written before the event that starts the group, so its
/// naming waits until the model makes a group of that label; a rename names a live group
/// at once (a [`ChangeKind::Rename`] when its name changes).
#[derive(Debug, Default)]
pub struct Announcements {
    /// Namings waiting for their group, by label, and whether it is of kernel threads.
    pending: hashbrown::HashMap<String, (Naming, bool)>,
    /// Everything announced, by label (the latest), for callers that show more than the
    /// model keeps (the creator, the parent).
    seen: hashbrown::HashMap<String, Announced>,
}

impl Announcements {
    /// None yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in one NDJSON line; true when it was an announcement.
    pub fn read_line(&mut self, model: &mut Attributor, line: &str) -> bool {
        match Announced::from_line(line) {
            Some(a) => {
                self.announce(model, a);
                true
            }
            None => false,
        }
    }

    /// Takes in one announcement: names its group now if the model has it live, else when
    /// it appears.
    pub fn announce(&mut self, model: &mut Attributor, a: Announced) {
        let live = model
            .groups()
            .iter()
            .rev()
            .find(|g| g.label == a.label && g.is_live())
            .map(|g| g.id);
        match live {
            Some(id) => {
                if a.kernel_threads {
                    model.mark_kernel_threads(id);
                }
                model.set_naming(id, a.naming.clone())
            }
            None => {
                self.pending
                    .insert(a.label.clone(), (a.naming.clone(), a.kernel_threads));
            }
        }
        self.seen.insert(a.label.clone(), a);
    }

    /// Names `group` (what [`Attributor::observe`] just returned) if a naming waits for
    /// its label. Called between `observe` and `take_changes`, the group's start carries
    /// the name.
    #[inline]
    pub fn apply(&mut self, model: &mut Attributor, group: Option<GroupId>) {
        // Inline, only the test: a stream without announcements (any perf.data) asks at
        // every event.
        if !self.pending.is_empty() {
            self.apply_pending(model, group);
        }
    }

    #[inline(never)]
    fn apply_pending(&mut self, model: &mut Attributor, group: Option<GroupId>) {
        if let Some(g) = group {
            if let Some((naming, kernel)) = self.pending.remove(&model.group(g).label) {
                if kernel {
                    model.mark_kernel_threads(g);
                }
                model.set_naming(g, naming);
            }
        }
    }

    /// [`Attributor::observe`], then [`Announcements::apply`].
    #[inline]
    pub fn observe(&mut self, model: &mut Attributor, ev: &Event<'_>) -> Option<GroupId> {
        self.observe_at(model, ev, None)
    }

    /// [`Announcements::observe`] through [`Attributor::observe_at`].
    #[inline]
    pub fn observe_at(
        &mut self,
        model: &mut Attributor,
        ev: &Event<'_>,
        set_index: Option<u32>,
    ) -> Option<GroupId> {
        let g = model.observe_at(ev, set_index);
        self.apply(model, g);
        g
    }

    /// The latest announcement of `label`.
    pub fn get(&self, label: &str) -> Option<&Announced> {
        self.seen.get(label)
    }

    /// Labels announced, in no order.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.seen.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Body;
    use crate::nsset::NsSet;
    use crate::record::NsLink;

    #[test]
    fn events_carry_their_container_and_changes_are_events() {
        let link = |ino| NsLink { dev: 4, ino };
        let mut m = Attributor::new(NsSet::from_links((1..=7).map(link)));
        let ct = NsSet::from_links([10, 2, 3, 14, 5, 16, 7].map(link));
        let ev = Event {
            time_ns: Some(5),
            cpu: Some(1),
            pid: Some(42),
            tid: Some(42),
            synthesized: false,
            body: Body::Namespaces {
                ns: &ct,
                comm: None,
                cause: None,
            },
        };
        let g = m.observe(&ev).unwrap();
        let mut out = Vec::new();
        write_labeled(&mut JsonWriter::new(), &ev, Some(m.group(g)), &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["container"], "ct-14");
        assert_eq!(v["type"], "namespaces");
        let changes: Vec<Change> = m.take_changes().collect();
        out.clear();
        write_change(&m, &changes[0], &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["type"], "container_start");
        assert_eq!(v["container"], "ct-14");
        assert_eq!(v["kind"], "container");
        assert_eq!(v["pid"], 42);
        assert_eq!(v["owns"], serde_json::json!(["net", "pid", "mnt"]));
    }

    #[test]
    fn announcements_name_groups_when_they_appear_and_rename_live_ones() {
        let link = |ino| NsLink { dev: 4, ino };
        let mut m = Attributor::new(NsSet::from_links((1..=7).map(link)));
        let ct = NsSet::from_links([10, 2, 3, 14, 5, 16, 7].map(link));
        let ev = Event {
            time_ns: Some(5),
            cpu: Some(1),
            pid: Some(42),
            tid: Some(42),
            synthesized: false,
            body: Body::Namespaces {
                ns: &ct,
                comm: None,
                cause: None,
            },
        };
        let mut names = Announcements::new();
        let start = r#"{"type":"container_start","time_ns":5,"cpu":null,"pid":42,"tid":42,"container":"ct-14","kind":"container","name":"web","runtime":"docker","runtime_id":"abc","cgroup":"/docker/abc","creator":"runc","owns":["pid","mnt"]}"#;
        assert!(names.read_line(&mut m, start));
        assert!(!names.read_line(&mut m, r#"{"type":"fork","time_ns":1}"#));
        let g = names.observe(&mut m, &ev).unwrap();
        let changes: Vec<Change> = m.take_changes().collect();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].kind, ChangeKind::Start);
        assert_eq!(m.group(g).name(), "web");
        assert_eq!(m.group(g).naming.runtime.as_deref(), Some("docker"));
        assert_eq!(m.group(g).naming.cgroup.as_deref(), Some("/docker/abc"));
        assert_eq!(names.get("ct-14").unwrap().creator.as_deref(), Some("runc"));
        let rename = start
            .replace("container_start", "container_rename")
            .replace("\"web\"", "\"api\"");
        assert!(names.read_line(&mut m, &rename));
        let changes: Vec<Change> = m.take_changes().collect();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].kind, ChangeKind::Rename);
        assert_eq!(m.group(g).name(), "api");
        // A name that only repeats the label is no name.
        let a =
            Announced::from_line(r#"{"type":"container_start","container":"ct-9","name":"ct-9"}"#);
        assert_eq!(a.unwrap().naming, Naming::default());
    }
}
