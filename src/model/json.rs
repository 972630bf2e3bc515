//! How the model shows in the event stream (schema v1): the "container" field of task events
//! and the "container_start", "container_exit" and "container_rename" events.

use crate::event::{push_str, push_u64, Event, JsonWriter, RecentTexts};
use crate::model::{Attributor, Change, ChangeKind, Group, GroupId};
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
/// runtime's id is known). The usual lines (FORK, EXIT, NAMESPACES) are written in one
/// reservation ([`JsonWriter::write_labeled_cached`]); the rest here.
#[inline(always)]
pub fn write_labeled(
    json: &mut JsonWriter,
    ev: &Event<'_>,
    group: Option<&Group>,
    out: &mut Vec<u8>,
) {
    if !json.write_labeled_cached(ev, group, out) {
        write_labeled_generally(json, ev, group, out);
    }
}

fn write_labeled_generally(
    json: &mut JsonWriter,
    ev: &Event<'_>,
    group: Option<&Group>,
    out: &mut Vec<u8>,
) {
    json.write(ev, out);
    if let Some(g) = group {
        // The writer ends every line with "}\n"; the fields go in before it.
        out.truncate(out.len() - 2);
        out.extend_from_slice(group_ref(&mut json.group_refs, g));
        out.extend_from_slice(b"}\n");
    }
}

/// The text of `g`'s fields in an event line, from `texts` (made there if new). A group's
/// label never changes (its id says it); its runtime id may, once named.
#[inline]
pub(crate) fn group_ref<'t>(
    texts: &'t mut RecentTexts<(GroupId, Option<String>)>,
    g: &Group,
) -> &'t [u8] {
    texts.text(
        |(id, runtime_id)| *id == g.id && *runtime_id == g.naming.runtime_id,
        |text| {
            push_group_ref(text, g);
            (g.id, g.naming.runtime_id.clone())
        },
    )
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
    push_str(out, g.display_name());
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
    out.extend_from_slice(b",\"owns\":");
    push_kind_list(out, g.differs);
    if change.kind == ChangeKind::Exit {
        out.extend_from_slice(b",\"started_ns\":");
        push_u64(out, g.started_ns);
    }
    out.extend_from_slice(b"}\n");
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
}
