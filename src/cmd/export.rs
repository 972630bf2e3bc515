//! `nswatch export`: a perf.data file or an NDJSON event stream, written for other tools.

use anyhow::{anyhow, bail, Context, Result};
use clap::ValueEnum;
use nswatch::event::JsonReader;
use nswatch::export::chrome::ChromeTrace;
use nswatch::export::trace_writer::Sink;
use nswatch::model::Attributor;
use nswatch::perf_data::{Order, PerfData};
use nswatch::EventBuilder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
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

/// perf.data's magic in either byte order.
const PERF_MAGICS: [&[u8; 8]; 2] = [b"PERFILE2", b"2ELIFREP"];

enum Input {
    Perf(Box<PerfData>),
    Ndjson(Box<dyn BufRead>),
}

fn classify(head: &[u8], name: &str) -> Result<bool> {
    if head.len() >= 8 && PERF_MAGICS.iter().any(|m| head[..8] == m[..]) {
        return Ok(true);
    }
    match head.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(false),
        None if head.is_empty() => bail!("{name}: empty input"),
        _ => bail!(
            "{name}: at offset 0x0: neither a perf.data file (magic \"PERFILE2\") nor NDJSON \
             events (a line starting with '{{')"
        ),
    }
}

fn open(args: &ExportArgs) -> Result<Input> {
    let name = args.file.display().to_string();
    let stdin = args.file.as_os_str() == "-";
    // Standard input redirected from a file is read like the named file (mapped, either
    // perf.data mode); a pipe is streamed.
    let stdin_file = if stdin {
        io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(File::from)
            .filter(|f| f.metadata().is_ok_and(|m| m.is_file()))
    } else {
        None
    };
    if stdin && stdin_file.is_none() {
        let mut head = Vec::new();
        io::stdin().take(8).read_to_end(&mut head)?;
        let rest = io::Cursor::new(head.clone()).chain(io::stdin());
        return Ok(if classify(&head, &name)? {
            Input::Perf(Box::new(
                PerfData::from_reader(Box::new(rest)).context(name)?,
            ))
        } else {
            Input::Ndjson(Box::new(BufReader::with_capacity(1 << 16, rest)))
        });
    }
    let file = match stdin_file {
        Some(f) => f,
        None => File::open(&args.file).with_context(|| name.clone())?,
    };
    let mut head = [0u8; 8];
    let n = file.read_at(&mut head, 0).with_context(|| name.clone())?;
    Ok(if classify(&head[..n], &name)? {
        Input::Perf(Box::new(PerfData::open(&args.file).context(name)?))
    } else {
        Input::Ndjson(Box::new(BufReader::with_capacity(1 << 16, file)))
    })
}

/// Runs `nswatch export`.
pub fn run(args: &ExportArgs) -> Result<()> {
    let name = args.file.display().to_string();
    let input = open(args)?;
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
            data.for_each(Order::Time, |dec, view| -> Result<()> {
                if stop.load(Ordering::Relaxed) {
                    return Err(interrupted());
                }
                if let Some(ev) = builder.decode(dec, view)? {
                    trace.event(&mut model, &ev)?;
                }
                Ok(())
            })
            .map(drop)
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
    let closed = trace.finish(why);
    result.with_context(|| name.clone())?;
    closed.context("writing the trace")?;
    Ok(())
}
