//! `report`'s text: the story of the namespace changes, then the groups, on one thread or on
//! two.

use super::lines::make_events;
use super::*;

/// `report` (text) on this thread.
pub(super) fn text(
    dest: &Dest,
    all: bool,
    name: &str,
    data: &mut PerfData,
    order: Order,
    select: &mut Selection,
) -> Result<()> {
    let mut out = BufWriter::with_capacity(1 << 16, dest.writer()?);
    if !data.info().pipe {
        writeln!(out, "# {}: {}", escape(name), describe(data.info()))?;
    }
    let mut builder = EventBuilder::new();
    let mut story = Story::new();
    story.set_times(dest.times());
    let mut model = perf_model(data);
    let mut cgroups = CgroupNames::new();
    let r = data.for_each(order, |dec, view| -> Result<()> {
        let (rec, id) = dec.decode(view)?;
        let sample_cgroup = match &rec {
            Record::Sample(s) => s.cgroup,
            _ => None,
        };
        if let Some(ev) = builder.event(&rec, &id) {
            let g = model.observe(&ev);
            story.add_shown(&ev, select.keep(&model, &ev, g));
            story.write_changes(&mut out)?;
            match (&ev.body, sample_cgroup, ev.pid, ev.tid) {
                (Body::Cgroup { id, path }, ..) => cgroups.cgroup(*id, path),
                (Body::Sample { .. }, Some(cg), Some(pid), Some(tid)) => {
                    let time = ev.time_ns.unwrap_or(model.now_ns());
                    cgroups.sample(&mut model, pid, tid, time, cg);
                }
                _ => {}
            }
            model.take_changes().for_each(drop);
        }
        Ok(())
    });
    let keep = |g: &Group| select.keep_group(&model, g.id);
    let end = (all, &keep as &dyn Fn(&Group) -> bool);
    finish_text(
        name,
        end,
        data.info(),
        &mut story,
        &model,
        r.map(drop),
        &mut out,
    )
}

/// `report` (text) on two threads: this one reads in order, decodes and makes the events,
/// and hands them to the other, which tells the story.
pub(super) fn text_split(
    dest: &Dest,
    all: bool,
    name: &str,
    data: &mut PerfData,
    order: Order,
) -> Result<()> {
    if !data.info().pipe {
        let mut out = dest.writer()?;
        writeln!(out, "# {}: {}", escape(name), describe(data.info()))?;
        out.flush()?;
    }
    let model = perf_model(data);
    let tell = |events: Consumer<'_, SentEvent<'_>>| {
        let mut out = match dest.writer() {
            Ok(w) => BufWriter::with_capacity(1 << 16, w),
            Err(e) => return ((Story::new(), file_model()), Err(e.into())),
        };
        let mut story = Story::new();
        story.set_times(dest.times());
        let mut model = model;
        let mut receiver = EventReceiver::new();
        let r = events.for_each(|sent| -> Result<()> {
            receiver.receive_at(sent, |ev, set| {
                story.add_at(ev, set);
                model.observe_at(ev, set);
                model.take_changes().for_each(drop);
            });
            story.write_changes(&mut out)?;
            Ok(())
        });
        let flushed = out.flush();
        ((story, model), r.and(flushed.map_err(Into::into)))
    };
    let mut sender = EventSender::new();
    let (read, ((mut story, model), told)) = data
        .for_each_split(order, make_events(&mut sender), tell)
        .context("not a mapped file")?;
    // The teller's error came first: the reader only stopped because the teller did.
    let r = told.and(read.map(drop));
    let mut out = BufWriter::with_capacity(1 << 16, dest.writer()?);
    finish_text(
        name,
        (all, &|_| true),
        data.info(),
        &mut story,
        &model,
        r,
        &mut out,
    )
}

/// The end of the text story: the sets and their tasks, after what was read.
/// `groups`: `--all`, and which groups the selection keeps.
pub(super) fn finish_text(
    name: &str,
    groups: (bool, &dyn Fn(&Group) -> bool),
    info: &FileInfo,
    story: &mut Story,
    model: &Attributor,
    r: Result<()>,
    out: &mut impl Write,
) -> Result<()> {
    if info.pipe {
        writeln!(out, "# {}: {}", escape(name), describe(info))?;
    }
    // Even after a damaged record, what was read is told, marked as such.
    if r.is_err() {
        writeln!(
            out,
            "# incomplete: the input is damaged; what was read before:"
        )?;
    }
    story.finish(out)?;
    write_groups(model, groups.0, groups.1, &story.times(), out)?;
    out.flush()?;
    r
}
