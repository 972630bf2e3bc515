//! `nswatch report`: the namespace story of a perf.data file.

use anyhow::{Context, Result};
use clap::ValueEnum;
use nswatch::event::JsonWriter;
use nswatch::model::json::{write_change, write_labeled};
use nswatch::model::{Attributor, Change, ChangeKind, GroupId};
use nswatch::perf_data::{FileInfo, Order, PerfData};
use nswatch::report::Story;
use nswatch::{Event, EventBuilder};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// One line per namespace change of a task, then the namespace sets and their tasks.
    Text,
    /// The event stream, one JSON object per record (schema version 1).
    Ndjson,
}

#[derive(Clone, Copy, ValueEnum)]
enum OrderArg {
    /// By timestamp, as `perf script` prints them.
    Time,
    /// As they lie in the file (per-CPU runs), without buffering.
    File,
}

/// Arguments of `nswatch report`.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// The perf.data file; `-` reads a pipe-mode stream from standard input
    /// (`perf record -o - … | nswatch report -`).
    file: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Record order.
    #[arg(long, value_enum, default_value = "time")]
    order: OrderArg,
    /// Skip record types this build does not know instead of stopping on them (perf stops).
    #[arg(long)]
    skip_unknown: bool,
}

fn describe(info: &FileInfo) -> String {
    let f = &info.features;
    let mut parts = vec![if info.pipe { "pipe mode" } else { "file mode" }.to_string()];
    if let Some(h) = &f.hostname {
        parts.push(format!("host {h}"));
    }
    if let Some(r) = &f.os_release {
        parts.push(format!("linux {r}"));
    }
    if let Some(n) = f.nr_cpus_online {
        parts.push(format!("{n} cpus"));
    }
    if let Some(c) = &f.cmdline {
        parts.push(format!("cmdline: {}", c.join(" ")));
    }
    parts.join(", ")
}

/// Writes `ev` labelled with its group, preceded by the groups it started and followed by
/// the groups it ended or renamed, so that a reader meets a container's start before any
/// event that names it.
fn write_with_changes(
    model: &mut Attributor,
    json: &mut JsonWriter,
    ev: &Event<'_>,
    g: Option<GroupId>,
    pending: &mut Vec<Change>,
    buf: &mut Vec<u8>,
) {
    pending.extend(model.take_changes());
    for c in pending.iter().filter(|c| c.kind == ChangeKind::Start) {
        write_change(model, c, buf);
    }
    write_labeled(json, ev, g.map(|g| model.group(g)), buf);
    for c in pending.iter().filter(|c| c.kind != ChangeKind::Start) {
        write_change(model, c, buf);
    }
    pending.clear();
}

/// Runs `nswatch report`.
pub fn run(args: &ReportArgs) -> Result<()> {
    let name = args.file.display().to_string();
    let mut data = PerfData::open(&args.file).with_context(|| name.clone())?;
    data.decoder_mut().set_skip_unknown(args.skip_unknown);
    let order = match args.order {
        OrderArg::Time => Order::Time,
        OrderArg::File => Order::File,
    };
    let mut builder = EventBuilder::new();
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let result = match args.format {
        Format::Ndjson => {
            // Lines are built in one buffer and written in large pieces; a line is never
            // split by an error, so what was written is always whole lines.
            let mut buf = Vec::with_capacity(1 << 17);
            let mut json = JsonWriter::new();
            let mut model = Attributor::learning();
            let mut pending = Vec::new();
            let r = data.for_each(order, |dec, view| -> Result<()> {
                if let Some(ev) = builder.decode(dec, view)? {
                    let g = model.observe(&ev);
                    write_with_changes(&mut model, &mut json, &ev, g, &mut pending, &mut buf);
                    if buf.len() >= 1 << 16 {
                        out.write_all(&buf)?;
                        buf.clear();
                    }
                }
                Ok(())
            });
            out.write_all(&buf)?;
            r
        }
        Format::Text => {
            if !data.info().pipe {
                writeln!(out, "# {name}: {}", describe(data.info()))?;
            }
            let mut story = Story::new();
            let r = data.for_each(order, |dec, view| -> Result<()> {
                if let Some(ev) = builder.decode(dec, view)? {
                    story.add(&ev);
                    story.write_changes(&mut out)?;
                }
                Ok(())
            });
            if data.info().pipe {
                writeln!(out, "# {name}: {}", describe(data.info()))?;
            }
            // Even after a damaged record, what was read is told, marked as such.
            if r.is_err() {
                writeln!(
                    out,
                    "# incomplete: the input is damaged; what was read before:"
                )?;
            }
            story.finish(&mut out)?;
            r
        }
    };
    out.flush()?;
    result.with_context(|| name)?;
    Ok(())
}
