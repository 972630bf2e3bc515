//! `report` of an NDJSON recording (`nswatch record -o`, `report --format ndjson`): its
//! events fed to the model again, the groups named as its announcements named them.

use super::lines::Lines;
use super::*;

/// `report` of an NDJSON recording: the text story or the event stream, with the groups
/// named as the recording's container_start/rename lines announced them.
pub(super) fn from_ndjson(
    args: &ReportArgs,
    dest: &Dest,
    name: &str,
    input: Box<dyn BufRead>,
    select: &mut Selection,
) -> Result<()> {
    if args.by.is_some() {
        anyhow::bail!("--by container reads a perf.data file (NDJSON keeps no samples' stacks)");
    }
    let mut reader = JsonReader::new();
    let mut input = ndjson::Lines::new(input);
    // Each line in turn; a line cut off at the end (a recording killed mid-write) ends
    // the input, as in `export`.
    let mut each = |f: &mut dyn FnMut(Option<&Event<'_>>, &str) -> Result<()>| -> Result<()> {
        while let Some(line) = input.next_line()? {
            let (text, number, offset) = (line.text, line.number, line.offset);
            if text.trim().is_empty() {
                continue;
            }
            match reader.read(text) {
                Ok(ev) => f(ev.as_ref(), text)?,
                Err(e) if line.is_cut_off() => {
                    crate::cmd::note!(
                        "nswatch: {}: line {number} (offset {offset:#x}) is cut off at the end \
                         of the input, ignored ({})",
                        escape(name),
                        escape(&e.to_string())
                    );
                    return Ok(());
                }
                Err(e) => anyhow::bail!("at line {number} (offset {offset:#x}): {e}"),
            }
        }
        Ok(())
    };
    match args.format {
        Format::Json | Format::Pprof => {
            anyhow::bail!(
                "--format json and pprof go with --by container; the event stream is --format ndjson"
            )
        }
        Format::Ndjson => {
            let mut lines = Lines::new(
                dest.writer()?,
                std::mem::take(select),
                dest.times(),
                file_model(),
            );
            let r = each(&mut |ev, line| {
                match ev {
                    Some(ev) => lines.event(ev)?,
                    // The model writes the group changes again, named as announced.
                    None => lines.announce(line),
                }
                Ok(())
            });
            *select = lines.finish()?;
            r
        }
        Format::Text => {
            let mut out = BufWriter::with_capacity(1 << 16, dest.writer()?);
            writeln!(out, "# {}: NDJSON events", escape(name))?;
            let mut story = Story::new();
            story.set_times(dest.times());
            let mut model = file_model();
            let mut names = Announcements::new();
            let r = each(&mut |ev, line| {
                match ev {
                    Some(ev) => {
                        let g = names.observe(&mut model, ev);
                        story.add_shown(ev, select.keep(&model, ev, g));
                        story.write_changes(&mut out)?;
                    }
                    None => {
                        names.read_line(&mut model, line);
                    }
                }
                model.take_changes().for_each(drop);
                Ok(())
            });
            if r.is_err() {
                writeln!(
                    out,
                    "# incomplete: the input is damaged; what was read before:"
                )?;
            }
            story.finish(&mut out)?;
            write_groups(
                &model,
                args.all,
                &|g| select.keep_group(&model, g.id),
                &dest.times(),
                &mut out,
            )?;
            out.flush()?;
            r
        }
    }
}
