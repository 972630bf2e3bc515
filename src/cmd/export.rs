//! `nswatch export`: a perf.data file or an NDJSON event stream, written for other tools.

use super::input::{open, Input};
use anyhow::{anyhow, Context, Result};
use clap::ValueEnum;
use nswatch::event::JsonReader;
use nswatch::export::chrome::ChromeTrace;
use nswatch::export::trace_writer::Sink;
use nswatch::model::Attributor;
use nswatch::perf_data::Order;
use nswatch::EventBuilder;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// Chrome trace-event JSON, for Perfetto (ui.perfetto.dev) and chrome://tracing.
    Chrome,
}

/// Arguments of `nswatch export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// A perf.data file (`perf record --namespaces`, file or pipe mode) or NDJSON written by
    /// `nswatch record` / `nswatch report --format ndjson`; `-` reads standard input.
    file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "chrome")]
    format: Format,
    /// Output file (standard output when absent). A file is a complete document after
    /// every write, even if nswatch is killed.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

/// Runs `nswatch export`.
pub fn run(args: &ExportArgs) -> Result<()> {
    let name = args.file.display().to_string();
    let input = open(&args.file, false)?;
    // Ctrl-C or a kill ends the reading; the trace is then closed like at the end of input.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let sink = match &args.output {
        Some(p) => {
            Sink::File(File::create(p).with_context(|| format!("{}: cannot create", p.display()))?)
        }
        None => Sink::Stream(Box::new(io::stdout())),
    };
    let Format::Chrome = args.format;
    let mut trace = ChromeTrace::new(sink, &name)?;
    let mut model = Attributor::learning();
    let interrupted = || anyhow!("interrupted");
    let result: Result<()> = match input {
        Input::Perf(mut data) => {
            let mut builder = EventBuilder::new();
            let r = data.for_each(Order::Time, |dec, view| -> Result<()> {
                if stop.load(Ordering::Relaxed) {
                    return Err(interrupted());
                }
                if let Some(ev) = builder.decode(dec, view)? {
                    trace.event(&mut model, &ev)?;
                }
                Ok(())
            });
            super::report::warn_order(&name, &data);
            r.map(drop)
        }
        Input::Ndjson(mut lines) => {
            let mut reader = JsonReader::new();
            let mut line = String::new();
            let (mut number, mut offset) = (0u64, 0u64);
            loop {
                if stop.load(Ordering::Relaxed) {
                    break Err(interrupted());
                }
                line.clear();
                let n = lines.read_line(&mut line)?;
                if n == 0 {
                    break Ok(());
                }
                number += 1;
                if !line.trim().is_empty() {
                    match reader.read(&line) {
                        Ok(Some(ev)) => trace.event(&mut model, &ev)?,
                        // The recording's container_start/rename lines name the groups.
                        Ok(None) => {
                            trace.announce(&mut model, &line)?;
                        }
                        Err(e) if JsonReader::is_cut_off(&line) => {
                            eprintln!(
                                "nswatch: {name}: line {number} (offset {offset:#x}) is cut \
                                 off at the end of the input, ignored ({e})"
                            );
                            break Ok(());
                        }
                        Err(e) => {
                            break Err(anyhow!("at line {number} (offset {offset:#x}): {e}"));
                        }
                    }
                }
                offset += n as u64;
            }
        }
    };
    // The trace is closed whatever happened: slices still open end where the input did.
    let why = match &result {
        Ok(()) => "end of trace",
        Err(e) if e.to_string() == "interrupted" => "interrupted",
        Err(_) => "input damaged",
    };
    let closed = trace.finish(&mut model, why);
    result.with_context(|| name.clone())?;
    closed.context("writing the trace")?;
    Ok(())
}
