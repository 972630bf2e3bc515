//! Labels the samples of a perf.data file with the container each was taken in — what a
//! profiler embedding nswatch does with its own samples.
//!
//!   perf record -a -g --namespaces -o perf.data -- sleep 5
//!   cargo run --example label_samples -- perf.data
//!
//! prints one line per sample: time, pid/tid, the group (its label, kind and name), the
//! instruction pointer. The model is fed every record in time order, so a sample is
//! attributed to where its task was at the sample's time, even if the task moved later.

use nswatch::model::Attributor;
use nswatch::perf_data::{Order, PerfData};
use nswatch::{Body, EventBuilder};
use std::io::{self, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: label_samples PERF.DATA");
        return ExitCode::FAILURE;
    };
    match run(&path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("label_samples: {path}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(path: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut data = PerfData::open(std::path::Path::new(path))?;
    let mut builder = EventBuilder::new();
    // The host is learned from perf's start-up records (PID 1, or kthreadd).
    let mut model = Attributor::learning();
    let mut out = io::BufWriter::new(io::stdout().lock());
    data.for_each(
        Order::Time,
        |dec, view| -> Result<(), Box<dyn std::error::Error>> {
            let Some(ev) = builder.decode(dec, view)? else {
                return Ok(());
            };
            let group = model.observe(&ev);
            if let Body::Sample { ip, .. } = &ev.body {
                let (label, kind, name) = match group.map(|g| model.group(g)) {
                    Some(g) => (g.label(), g.kind.name(), g.name()),
                    None => ("-", "unknown", "-"),
                };
                writeln!(
                    out,
                    "{:>16} {:>7}/{:<7} {label:<20} {kind:<9} {name:<24} {:#x}",
                    ev.time_ns.unwrap_or(0),
                    ev.pid.unwrap_or(0),
                    ev.tid.unwrap_or(0),
                    ip.unwrap_or(0),
                )?;
            }
            Ok(())
        },
    )?;
    out.flush()?;
    Ok(())
}
