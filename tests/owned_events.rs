//! `PerfData::events`, the pulled owned events, against `for_each` with `EventBuilder`: the
//! same events in the same order, from files and streams, in either order, and the same
//! error where the input is damaged.

use nswatch::perf_data::{Order, PerfData};
use nswatch::{DecodeError, EventBuilder, OwnedEvent};
use std::path::PathBuf;

fn fixtures() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut all: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .collect();
    all.sort();
    assert!(all.len() >= 5);
    all
}

/// The events through the callback path, copied, and the error that stopped it.
fn pushed(mut data: PerfData, order: Order) -> (Vec<OwnedEvent>, Option<String>, u64) {
    let mut builder = EventBuilder::new();
    let mut out = Vec::new();
    let r = data.for_each(order, |dec, view| -> Result<(), DecodeError> {
        if let Some(ev) = builder.decode(dec, view)? {
            out.push(ev.to_owned_event());
        }
        Ok(())
    });
    (out, r.err().map(|e| e.to_string()), data.late_records())
}

/// The events through the iterator, and the error it ended with.
fn pulled(mut data: PerfData, order: Order) -> (Vec<OwnedEvent>, Option<String>, u64) {
    let mut out = Vec::new();
    let mut err = None;
    let mut events = data.events(order);
    for ev in events.by_ref() {
        match ev {
            Ok(ev) => out.push(ev),
            Err(e) => err = Some(e.to_string()),
        }
    }
    assert!(events.next().is_none(), "the iterator ends for good");
    drop(events);
    (out, err, data.late_records())
}

fn stream(bytes: &[u8]) -> PerfData {
    PerfData::from_reader(Box::new(std::io::Cursor::new(bytes.to_vec()))).unwrap()
}

#[test]
fn files_give_the_same_events_pulled_as_pushed() {
    for path in fixtures() {
        for order in [Order::File, Order::Time] {
            let a = pushed(PerfData::open(&path).unwrap(), order);
            let b = pulled(PerfData::open(&path).unwrap(), order);
            assert!(a.0.len() > 100, "{}", path.display());
            assert_eq!(a, b, "{} {order:?}", path.display());
        }
    }
}

#[test]
fn streams_give_the_same_events_pulled_as_pushed() {
    let mut streams = 0;
    for path in fixtures() {
        let bytes = std::fs::read(&path).unwrap();
        if !PerfData::from_bytes(bytes.clone()).unwrap().info().pipe {
            continue;
        }
        streams += 1;
        for order in [Order::File, Order::Time] {
            let a = pushed(stream(&bytes), order);
            let b = pulled(stream(&bytes), order);
            assert!(a.0.len() > 100, "{}", path.display());
            assert_eq!(a, b, "{} {order:?}", path.display());
            // A stream read whole from memory is the same input.
            let c = pulled(PerfData::from_bytes(bytes.clone()).unwrap(), order);
            assert_eq!(a.0, c.0, "{} {order:?} in memory", path.display());
        }
    }
    assert!(streams > 0, "a fixture in pipe mode");
}

#[test]
fn a_cut_input_gives_the_same_events_then_the_same_error() {
    let path = fixtures()
        .into_iter()
        .find(|p| p.ends_with("pipe.data"))
        .unwrap();
    let bytes = std::fs::read(path).unwrap();
    for cut in [bytes.len() / 3 + 5, bytes.len() / 2 + 3, bytes.len() - 1] {
        let b = &bytes[..cut];
        for order in [Order::File, Order::Time] {
            let a = pushed(PerfData::from_bytes(b.to_vec()).unwrap(), order);
            let p = pulled(PerfData::from_bytes(b.to_vec()).unwrap(), order);
            assert!(a.1.is_some(), "cut at {cut}: an error");
            assert_eq!(a, p, "cut at {cut}, {order:?}");
            let a = pushed(stream(b), order);
            let p = pulled(stream(b), order);
            assert!(a.1.is_some(), "cut at {cut}: an error");
            assert_eq!(a, p, "cut at {cut}, {order:?}, streamed");
        }
    }
}
