//! The fast paths are the general one: what `report`'s reading thread sends (by
//! [`EventSender::send_record`]: FORK, EXIT and NAMESPACES read straight from the record,
//! command names kept by slot), and the live session's events (`Decoder::hot`), are the
//! events [`EventBuilder::event`] makes, for every record of every fixture; items are at
//! most 40 bytes.

mod common;

use nswatch::event::Body;
use nswatch::event::{EventReceiver, EventSender, SentEvent};
use nswatch::EventBuilder;

/// Both ways of sending a record to the other thread — decoded then sent
/// ([`EventSender::send_into`]) and read in place ([`EventSender::send_record`]) — give,
/// through an [`EventReceiver`], the events [`EventBuilder::event`] makes, for every record
/// of every fixture: command names known, each set sent once.
#[test]
fn sent_events_are_the_events() {
    assert!(std::mem::size_of::<SentEvent<'_>>() <= 40);
    for path in common::fixture_captures() {
        let mut data = nswatch::PerfData::open(&path).unwrap();
        let mut builder = EventBuilder::new();
        // [0]: send_into, [1]: send_record.
        let mut senders = [EventSender::new(), EventSender::new()];
        let mut receivers = [EventReceiver::new(), EventReceiver::new()];
        let (mut events, mut namespaces) = ([0; 2], 0);
        let (mut comms, mut sets) = ([0; 2], [0; 2]);
        data.for_each(
            nswatch::Order::Time,
            |dec, view| -> Result<(), nswatch::DecodeError> {
                let (rec, id) = dec.decode(view)?;
                let want = builder.event(&rec, &id);
                let mut sent = [Vec::new(), Vec::new()];
                senders[0].send_into(&rec, &id, &mut sent[0]);
                senders[1].send_record(dec, view, &mut sent[1])?;
                let at = format!("{} at {:#x}", path.display(), view.offset);
                for k in 0..2 {
                    let mut got = 0;
                    for s in sent[k].drain(..) {
                        let seen = receivers[k].receive(&s, |ev| {
                            assert_eq!(Some(ev), want.as_ref(), "{at} (path {k})");
                            comms[k] += ev_has_comm(ev) as usize;
                        });
                        match seen {
                            Some(()) => got += 1,
                            None => sets[k] += 1,
                        }
                    }
                    assert_eq!(got, want.is_some() as usize, "{at} (path {k})");
                    events[k] += got;
                }
                namespaces +=
                    want.is_some_and(|w| matches!(w.body, Body::Namespaces { .. })) as usize;
                Ok(())
            },
        )
        .unwrap();
        let p = path.display();
        for k in 0..2 {
            assert!(events[k] > 0, "{p} (path {k})");
            assert!(
                comms[k] > 0,
                "{p} (path {k}): no NAMESPACES event named its task"
            );
            assert!(sets[k] > 0, "{p} (path {k}): no set sent");
            assert!(
                sets[k] < namespaces,
                "{p} (path {k}): a set sent more than once"
            );
        }
    }
}

/// [`Decoder::hot`] with [`EventBuilder::hot_event`] (the live pipeline's fast path) make
/// the events that decoding and [`EventBuilder::event`] make, for every record of every
/// fixture; the records it leaves to the general path are the other types.
#[test]
fn hot_events_are_the_events() {
    let mut hot = 0;
    for path in common::fixture_captures() {
        let mut data = nswatch::PerfData::open(&path).unwrap();
        let (mut builder, mut fast) = (EventBuilder::new(), EventBuilder::new());
        data.for_each(
            nswatch::Order::Time,
            |dec, view| -> Result<(), nswatch::DecodeError> {
                let (rec, id) = dec.decode(view)?;
                let want = builder.event(&rec, &id);
                let at = format!("{} at {:#x}", path.display(), view.offset);
                match dec.hot(view) {
                    Some(h) => {
                        hot += 1;
                        assert_eq!(Some(fast.hot_event(&h)), want, "{at}");
                    }
                    None => {
                        use nswatch::record::kind;
                        assert!(
                            ![kind::FORK, kind::EXIT, kind::NAMESPACES].contains(&view.ty),
                            "{at}: a {} left to the general path",
                            view.ty
                        );
                        assert_eq!(fast.event(&rec, &id), want, "{at}");
                    }
                }
                Ok(())
            },
        )
        .unwrap();
    }
    assert!(hot > 1000, "{hot}");
}

fn ev_has_comm(ev: &nswatch::Event<'_>) -> bool {
    matches!(ev.body, nswatch::Body::Namespaces { comm: Some(_), .. })
}

/// `write_labeled` (and its fast path, `JsonWriter::write_labeled_cached`, called alone)
/// append the plain writer's line with the group's fields, for every event of every
/// fixture, with command names that need escaping or are long, and a group whose runtime id
/// changes on the way.
#[test]
fn cached_labeled_lines_are_write_labeleds() {
    use nswatch::event::JsonWriter;
    use nswatch::model::json::write_labeled;
    use nswatch::model::{Attributor, Naming};
    use std::borrow::Cow;

    let (mut cached, mut with_cause) = (0, 0);
    // Causes of a storm between two namespaces, and one that failed.
    let causes: Vec<nswatch::bpf::Cause> = (0..5u32)
        .map(|i| {
            let mut c = nswatch::bpf::Cause::blank();
            c.dev = 4;
            c.flags = 0x4000_0000;
            c.before[0] = 4_026_532_000 + i % 2;
            c.after[0] = 4_026_532_000 + (i + 1) % 2;
            c.ret = if i == 4 { -22 } else { 0 };
            c.enter_ns = 54_083_258_160_300 + u64::from(i);
            c.exit_ns = c.enter_ns + 480_863;
            c
        })
        .collect();
    for path in common::fixture_captures() {
        let mut data = nswatch::PerfData::open(&path).unwrap();
        let mut builder = EventBuilder::new();
        let mut model = Attributor::learning();
        let (mut plain, mut fast) = (JsonWriter::new(), JsonWriter::new());
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut n = 0u32;
        data.for_each(
            nswatch::Order::Time,
            |dec, view| -> Result<(), nswatch::DecodeError> {
                let Some(mut ev) = builder.decode(dec, view)? else {
                    return Ok(());
                };
                n += 1;
                // Now and then a name to escape, or a long one.
                // Every other one with a cause, as the eBPF probe gives it.
                if let nswatch::Body::Namespaces { comm, cause, .. } = &mut ev.body {
                    match n % 7 {
                        1 => *comm = Some(Cow::Borrowed("a \"quoted\"\tname")),
                        2 => *comm = Some(Cow::Borrowed("a-name-longer-than-thirty-two-bytes")),
                        3 => *comm = Some(Cow::Borrowed("")),
                        _ => {}
                    }
                    if n.is_multiple_of(2) {
                        *cause = Some(&causes[(n / 2 % 5) as usize]);
                        with_cause += 1;
                    }
                }
                let g = model.observe(&ev);
                model.take_changes().for_each(drop);
                if let (Some(g), 0) = (g, n % 50) {
                    let id = format!("rt{}", n / 100);
                    model.set_naming(
                        g,
                        Naming {
                            runtime_id: Some(id),
                            ..Naming::default()
                        },
                    );
                    model.take_changes().for_each(drop);
                }
                let group = g.map(|g| model.group(g));
                // The line as the plain writer makes it, the group's fields added.
                let mut want = ev.to_json();
                if let Some(g) = group {
                    want.pop();
                    want += &format!(
                        ",\"container\":{}",
                        serde_json::to_string(&g.label()).unwrap()
                    );
                    if let Some(id) = &g.naming().runtime_id {
                        want += &format!(",\"runtime_id\":{}", serde_json::to_string(id).unwrap());
                    }
                    want.push('}');
                }
                want.push('\n');
                write_labeled(&mut plain, &ev, group, &mut a);
                if fast.write_labeled_cached(&ev, group, &mut b) {
                    cached += 1;
                } else {
                    write_labeled(&mut fast, &ev, group, &mut b);
                }
                let at = format!("{} at {:#x}", path.display(), view.offset);
                assert_eq!(String::from_utf8_lossy(&a), want, "{at}");
                assert_eq!(String::from_utf8_lossy(&b), want, "{at}");
                a.clear();
                b.clear();
                Ok(())
            },
        )
        .unwrap();
    }
    assert!(cached > 1000, "{cached}");
    assert!(with_cause > 200, "{with_cause}");
}
