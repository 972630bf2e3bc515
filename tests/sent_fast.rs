//! The reading thread's fast path ([`EventSender::send_record`]: FORK, EXIT and NAMESPACES
//! read straight from the record, command names kept by slot) gives, through an
//! [`EventReceiver`], the events [`EventBuilder::event`] makes, for every record of every
//! fixture, and items of at most 40 bytes.

use nswatch::event::{EventReceiver, EventSender, SentEvent};
use nswatch::EventBuilder;

#[test]
fn fast_sent_events_are_the_events() {
    assert!(std::mem::size_of::<SentEvent<'_>>() <= 40);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut files = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "data") {
            continue;
        }
        files += 1;
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
    assert!(files >= 7);
}

fn ev_has_comm(ev: &nswatch::Event<'_>) -> bool {
    matches!(ev.body, nswatch::Body::Namespaces { comm: Some(_), .. })
}
