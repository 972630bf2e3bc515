//! `nswatch export`: a perf.data file or an NDJSON event stream, written for other tools.

use super::input::{open, Input, InputArgs};
use anyhow::{anyhow, Context, Result};
use clap::ValueEnum;
use nswatch::event::JsonReader;
use nswatch::export::chrome::ChromeTrace;
use nswatch::export::trace_writer::Sink;
use nswatch::model::Attributor;
use nswatch::ndjson::Lines;
use nswatch::out_file::create_output;
use nswatch::perf_data::Order;
use nswatch::select::Selection;
use nswatch::text::escape;
use nswatch::EventBuilder;
use std::cell::Cell;
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
    #[command(flatten)]
    input: InputArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "chrome")]
    format: Format,
    /// Output file (standard output when absent): created 0600, a file already there moved
    /// to FILE.old, a symbolic link not followed (but to a device, a FIFO or /dev/stdout).
    /// A file is a complete document after every write, even if nswatch is killed.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Only the tasks of these process ids (comma list, repeatable), and the groups they
    /// started.
    #[arg(short = 'p', long = "pid", value_name = "PID", value_delimiter = ',')]
    pids: Vec<u32>,
    /// Only the tracks of this group and the containers nested in it: its label
    /// (ct-4026532300), name, runtime id, or the id's first 12 or more characters.
    #[arg(long, value_name = "NAME|ID")]
    container: Option<String>,
}

/// Runs `nswatch export`.
pub fn run(args: &ExportArgs) -> Result<()> {
    let path = args.input.path()?;
    let name = path.display().to_string();
    let input = open(path, false)?;
    // Ctrl-C or a kill ends the reading; the trace is then closed like at the end of input.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    // A new file (0600, never through a planted link) is rewritten in place to stay a
    // document; a device, FIFO or the caller's descriptor is a stream, written once.
    let (sink, fresh) = match &args.output {
        Some(p) => {
            let o = create_output(p)?;
            if o.fresh {
                (Sink::File(o.file), true)
            } else {
                (Sink::Stream(Box::new(o.file)), false)
            }
        }
        None => (Sink::Stream(Box::new(io::stdout())), false),
    };
    let out_name = args.output.as_ref().map_or_else(
        || "standard output".to_string(),
        |p| p.display().to_string(),
    );
    // Write errors name the output, not the input; a file cut short says so in it.
    let out_failed = Cell::new(false);
    let to_out = |e: io::Error| {
        out_failed.set(true);
        let left = if fresh {
            ": the file ends with the events written before, marked \"nswatchExport\":\"incomplete\""
        } else {
            ""
        };
        anyhow!("{out_name}: writing the trace: {e}{left}")
    };
    let Format::Chrome = args.format;
    let mut trace = match ChromeTrace::new(sink, &name) {
        Ok(t) => t,
        Err(e) => {
            if let (true, Some(p)) = (fresh, &args.output) {
                // Not even the start of the document went out: nothing to keep.
                let _ = std::fs::remove_file(p);
            }
            return Err(anyhow!("{out_name}: writing the start of the trace: {e}"));
        }
    };
    trace.select(Selection::new(
        args.pids.clone(),
        Vec::new(),
        args.container.as_deref(),
    ));
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
                    trace.event(&mut model, &ev).map_err(to_out)?;
                }
                Ok(())
            });
            super::report::warn_order(&name, &data);
            r.map(drop)
        }
        Input::Ndjson(input) => {
            let mut reader = JsonReader::new();
            let mut lines = Lines::new(input);
            loop {
                if stop.load(Ordering::Relaxed) {
                    break Err(interrupted());
                }
                let line = match lines.next_line() {
                    Ok(Some(line)) => line,
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e.into()),
                };
                let (text, number, offset) = (line.text, line.number, line.offset);
                if text.trim().is_empty() {
                    continue;
                }
                match reader.read(text) {
                    Ok(Some(ev)) => {
                        if let Err(e) = trace.event(&mut model, &ev) {
                            break Err(to_out(e));
                        }
                    }
                    // The recording's container_start/rename lines name the groups.
                    Ok(None) => {
                        if let Err(e) = trace.announce(&mut model, text) {
                            break Err(to_out(e));
                        }
                    }
                    Err(e) if line.is_cut_off() => {
                        super::note!(
                            "nswatch: {}: line {number} (offset {offset:#x}) is cut off at the \
                             end of the input, ignored ({})",
                            escape(&name),
                            escape(&e.to_string())
                        );
                        break Ok(());
                    }
                    Err(e) => {
                        break Err(anyhow!("at line {number} (offset {offset:#x}): {e}"));
                    }
                }
            }
        }
    };
    // The trace is closed whatever happened: slices still open end where the input did.
    let why = match &result {
        Ok(()) => "end of trace",
        Err(e) if e.to_string() == "interrupted" => "interrupted",
        Err(_) => "input damaged",
    };
    if out_failed.get() {
        // Nothing more is written: the file is as the last successful write left it.
        drop(trace);
        return result;
    }
    let unseen = trace.selection().unseen_report();
    let closed = trace.finish(&mut model, why);
    result.with_context(|| name.clone())?;
    closed.map_err(to_out)?;
    if let Some((what, none)) = unseen {
        if none {
            anyhow::bail!("{}: {what}", escape(&name));
        }
        super::note!("nswatch: {}: {what}", escape(&name));
    }
    Ok(())
}
