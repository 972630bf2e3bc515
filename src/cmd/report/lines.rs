//! `report`'s NDJSON lines: each event labelled by the model with its group, on one thread
//! or on two (the reading thread makes the events, the second runs the model and writes).

use super::*;

/// Writes `ev` labelled with its group, with the group events it caused in the order
/// [`hand_on`] gives (a reader meets a container's start before any event that names it).
pub(super) fn write_with_changes(
    model: &mut Attributor,
    json: &mut JsonWriter,
    ev: &Event<'_>,
    g: Option<GroupId>,
    pending: &mut Vec<Change>,
    buf: &mut Vec<u8>,
) {
    hand_on(model, pending, ev, g, |_, _| {}, &mut |m, u| match u {
        Update::Event { event, group } => {
            write_labeled(json, event, group.map(|g| m.group(g)), buf)
        }
        Update::Group(c) => write_change(m, c, buf),
    });
}

/// The NDJSON lines of `report`: the model labels each event, and the lines are built in
/// one buffer and written in large pieces; a line is never split by an error, so what was
/// written is always whole lines.
pub(super) struct Lines<W: Write> {
    out: W,
    buf: Vec<u8>,
    json: JsonWriter,
    model: Attributor,
    pending: Vec<Change>,
    /// An NDJSON input's own container_start/rename lines, naming the groups.
    names: Announcements,
    /// `--pid`, `--container`: which events and group changes are written.
    select: Selection,
    /// `--time wall`.
    wall: Option<WallClock>,
}

impl<W: Write> Lines<W> {
    /// Lines labelled by `model` (a [`file_model`] or a [`perf_model`]).
    pub(super) fn new(out: W, select: Selection, times: Times, model: Attributor) -> Self {
        Lines {
            select,
            wall: times.0,
            out,
            buf: Vec::with_capacity(1 << 17),
            json: JsonWriter::new(),
            model,
            pending: Vec::new(),
            names: Announcements::new(),
        }
    }

    #[inline(always)]
    pub(super) fn event(&mut self, ev: &Event<'_>) -> io::Result<()> {
        self.event_at(ev, None)
    }

    /// [`Lines::event`] for an event of an [`EventReceiver`], with its set's index there
    /// ([`EventReceiver::receive_at`]).
    #[inline(always)]
    pub(super) fn event_at(&mut self, ev: &Event<'_>, set_index: Option<u32>) -> io::Result<()> {
        let from = self.buf.len();
        let g = self.names.observe_at(&mut self.model, ev, set_index);
        let Lines {
            model,
            json,
            pending,
            buf,
            select,
            ..
        } = self;
        let changes = model.take_changes();
        if !select.is_all() {
            pending.extend(changes);
            let keep = select.keep(model, ev, g);
            let select = &*select;
            hand_on(model, pending, ev, g, |_, _| {}, &mut |m, u| match u {
                Update::Event { event, group } if keep => {
                    write_labeled(json, event, group.map(|g| m.group(g)), buf)
                }
                Update::Event { .. } => {}
                Update::Group(c) if select.keep_group(m, c.group) => write_change(m, c, buf),
                Update::Group(_) => {}
            });
        } else if changes.len() == 0 {
            // Most events change no group: what `hand_on` does then, without its steps.
            drop(changes);
            json.write_labeled_at(ev, g.map(|g| model.group(g)), set_index, buf);
        } else {
            pending.extend(changes);
            write_with_changes(model, json, ev, g, pending, buf);
        }
        if let Some(w) = &self.wall {
            add_wall_times(&mut self.buf, from, w);
        }
        if self.buf.len() >= 1 << 16 {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// An NDJSON input's line that is no event: an announcement names a group, and a
    /// rename it makes is written as the model's own.
    pub(super) fn announce(&mut self, line: &str) {
        if self.names.read_line(&mut self.model, line) {
            self.write_changes();
        }
    }

    /// Writes the model's pending group changes that the selection keeps.
    fn write_changes(&mut self) {
        let from = self.buf.len();
        let changes: Vec<Change> = self.model.take_changes().collect();
        for c in changes
            .iter()
            .filter(|c| self.select.keep_group(&self.model, c.group))
        {
            write_change(&self.model, c, &mut self.buf);
        }
        if let Some(w) = &self.wall {
            add_wall_times(&mut self.buf, from, w);
        }
    }

    /// Writes what is left; hands back the selection, which knows what it found.
    pub(super) fn finish(mut self) -> io::Result<Selection> {
        // Groups still without a task at the end are declared ended.
        self.model.finish();
        self.write_changes();
        self.out.write_all(&self.buf)?;
        self.out.flush()?;
        Ok(self.select)
    }
}

/// `report --format ndjson` on this thread.
pub(super) fn ndjson(
    dest: &Dest,
    data: &mut PerfData,
    order: Order,
    select: &mut Selection,
) -> Result<()> {
    let mut builder = EventBuilder::new();
    let mut lines = Lines::new(
        dest.writer()?,
        std::mem::take(select),
        dest.times(),
        perf_model(data),
    );
    let r = data.for_each(order, |dec, view| -> Result<()> {
        if let Some(ev) = builder.decode(dec, view)? {
            lines.event(&ev)?;
        }
        Ok(())
    });
    *select = lines.finish()?;
    r.map(drop)
}

/// `report --format ndjson` on two threads. This one reads in order, decodes and makes
/// the events; the other keeps the command names, runs the model and writes the lines.
/// Events cross small ([`SentEvent`]), and each record is decoded once.
pub(super) fn ndjson_split(dest: &Dest, data: &mut PerfData, order: Order) -> Result<()> {
    let model = perf_model(data);
    let write = |events: Consumer<'_, SentEvent<'_>>| -> Result<()> {
        let mut lines = Lines::new(dest.writer()?, Selection::default(), dest.times(), model);
        let mut receiver = EventReceiver::new();
        let r = events.for_each(|sent| -> Result<()> {
            receiver
                .receive_at(sent, |ev, set| lines.event_at(ev, set))
                .transpose()?;
            Ok(())
        });
        lines.finish()?;
        r
    };
    let mut sender = EventSender::new();
    let (read, written) = data
        .for_each_split(order, make_events(&mut sender), write)
        .context("not a mapped file")?;
    // The writer's error came first: the reader only stopped because the writer did.
    written?;
    read.map(drop)
}

/// The reading thread's part of a report on two threads: each record's event, made once.
pub(super) fn make_events<'b, 'm>(
    sender: &'b mut EventSender,
) -> impl FnMut(&nswatch::Decoder, &nswatch::RecordView<'m>, &mut Vec<SentEvent<'m>>) -> Result<()> + 'b
{
    move |dec, view, events| Ok(sender.send_record(dec, view, events)?)
}
