//! A whole perf.data input (file or pipe mode), read in memory and as a stream, in file
//! and in time order; every record is decoded and its event serialised. Errors are fine,
//! panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nswatch::event::JsonWriter;
use nswatch::{DecodeError, EventBuilder, Order, PerfData};

/// Reads every record of `pd` in `order`, as `nswatch report` does; decode errors of single
/// records are counted, not fatal (so the walk goes on past them).
fn walk(mut pd: PerfData, order: Order, skip_unknown: bool) -> usize {
    pd.decoder_mut().set_skip_unknown(skip_unknown);
    let mut builder = EventBuilder::new();
    let mut writer = JsonWriter::new();
    let mut out = Vec::new();
    let mut n = 0usize;
    let res = pd.for_each(order, |dec, view| -> Result<(), DecodeError> {
        match builder.decode(dec, view) {
            Ok(Some(ev)) => {
                out.clear();
                writer.write(&ev, &mut out);
                let v: serde_json::Value =
                    serde_json::from_slice(&out).expect("events serialise to valid JSON");
                n += serde_json::to_vec(&v).expect("re-serialise").len();
            }
            Ok(None) => {}
            Err(e) => {
                assert_eq!(e.offset, view.offset);
                n += e.to_string().len();
            }
        }
        Ok(())
    });
    match res {
        Ok(stats) => n += stats.records as usize + stats.of(16) as usize,
        Err(e) => n += e.to_string().len(),
    }
    // Features are read from the header (file mode) or the stream (pipe mode).
    n += serde_json::to_vec(&pd.info().features)
        .expect("features serialise")
        .len();
    n += pd.decoder().attrs().count();
    n
}

fuzz_target!(|data: &[u8]| {
    // The last byte picks the unknown-type policy, so both are exercised.
    let skip_unknown = data.last().is_some_and(|b| b & 1 != 0);
    let mut n = 0usize;
    for order in [Order::File, Order::Time] {
        match PerfData::from_bytes(data.to_vec()) {
            Ok(pd) => n += walk(pd, order, skip_unknown),
            Err(e) => n += e.to_string().len(),
        }
        match PerfData::from_reader(Box::new(std::io::Cursor::new(data.to_vec()))) {
            Ok(pd) => n += walk(pd, order, skip_unknown),
            Err(e) => n += e.to_string().len(),
        }
    }
    std::hint::black_box(n);
});
