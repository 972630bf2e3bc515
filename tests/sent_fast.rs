//! The reading thread's fast path ([`EventSender::send_record`]: FORK, EXIT and NAMESPACES
//! read straight from the record, command names kept by slot) gives, through an
//! [`EventReceiver`], the events [`EventBuilder::event`] makes, for every record of every
//! fixture, and items of at most 40 bytes.

mod common;

use nswatch::event::{EventReceiver, EventSender, SentEvent};
use nswatch::EventBuilder;

#[test]
fn fast_sent_events_are_the_events() {
    assert!(std::mem::size_of::<SentEvent<'_>>() <= 40);
    for path in common::fixture_captures() {
        let mut data = nswatch::PerfData::open(&path).unwrap();
        let mut builder = EventBuilder::new();
        let mut sender = EventSender::new();
        let mut receiver = EventReceiver::new();
        let (mut events, mut comms) = (0, 0);
        data.for_each(
            nswatch::Order::Time,
            |dec, view| -> Result<(), nswatch::DecodeError> {
                let (rec, id) = dec.decode(view)?;
                let want = builder.event(&rec, &id);
                let mut sent = Vec::new();
                sender.send_record(dec, view, &mut sent)?;
                let at = format!("{} at {:#x}", path.display(), view.offset);
                let mut got = 0;
                for s in sent.drain(..) {
                    let seen = receiver.receive(&s, |ev| {
                        assert_eq!(Some(ev), want.as_ref(), "{at}");
                        comms += ev_has_comm(ev) as usize;
                    });
                    got += seen.is_some() as usize;
                }
                assert_eq!(got, want.is_some() as usize, "{at}");
                events += got;
                Ok(())
            },
        )
        .unwrap();
        assert!(events > 0, "{}", path.display());
        assert!(
            comms > 0,
            "{}: no NAMESPACES event named its task",
            path.display()
        );
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

/// `JsonWriter::write_labeled_cached` appends what `write_labeled` does, for every event of
/// every fixture, with command names that need escaping or are long, and a group whose
/// runtime id changes on the way.
#[test]
fn cached_labeled_lines_are_write_labeleds() {
    use nswatch::event::JsonWriter;
    use nswatch::model::json::write_labeled;
    use nswatch::model::{Attributor, Naming};
    use std::borrow::Cow;

    let mut cached = 0;
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
                if let nswatch::Body::Namespaces { comm, .. } = &mut ev.body {
                    match n % 7 {
                        1 => *comm = Some(Cow::Borrowed("a \"quoted\"\tname")),
                        2 => *comm = Some(Cow::Borrowed("a-name-longer-than-thirty-two-bytes")),
                        3 => *comm = Some(Cow::Borrowed("")),
                        _ => {}
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
                write_labeled(&mut plain, &ev, group, &mut a);
                if fast.write_labeled_cached(&ev, group, &mut b) {
                    cached += 1;
                } else {
                    write_labeled(&mut fast, &ev, group, &mut b);
                }
                assert_eq!(
                    String::from_utf8_lossy(&a),
                    String::from_utf8_lossy(&b),
                    "{} at {:#x}",
                    path.display(),
                    view.offset
                );
                a.clear();
                b.clear();
                Ok(())
            },
        )
        .unwrap();
    }
    assert!(cached > 1000, "{cached}");
}
