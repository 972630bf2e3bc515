//! Inputs the fuzzers found that once made the decoder panic: each must now end in an
//! error (or a clean read), never a panic, through both the mapped and the streamed reader.

use nswatch::{EventBuilder, Order, PerfData};
use std::path::Path;

fn read_all(mut pd: PerfData, order: Order) {
    let mut b = EventBuilder::new();
    let _ = pd.for_each(order, |dec, v| -> Result<(), nswatch::DecodeError> {
        if let Some(ev) = b.decode(dec, v)? {
            let _ = ev.to_json();
        }
        Ok(())
    });
}

#[test]
fn fuzz_regressions_do_not_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        for order in [Order::File, Order::Time] {
            if let Ok(pd) = PerfData::from_bytes(data.clone()) {
                read_all(pd, order);
            }
            if let Ok(pd) = PerfData::from_reader(Box::new(std::io::Cursor::new(data.clone()))) {
                read_all(pd, order);
            }
        }
        n += 1;
    }
    assert!(n >= 4, "the regression inputs are there");
}
