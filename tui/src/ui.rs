//! Drawing: [`draw`] lays the [`App`] out on a frame. Nothing here changes the state but
//! the tree's scroll offset, which only the drawing can know (it depends on the height).

use crate::app::{App, Column, Item, Pane, Recent, RecentKind, Sort, Source, ViewRow};
use crate::keys::HELP;
use crate::usage::human_bytes;
use nswatch::model::tree::GroupNode;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;
use std::fmt::Write;

/// Widest screen that still stacks the panes; wider ones put the tree beside them.
pub const WIDE: u16 = 120;

const SPARK: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Draws the whole screen.
pub fn draw(frame: &mut Frame<'_>, app: &App) {
    let area = frame.area();
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, app, header);
    if body.width >= WIDE {
        let [left, right] =
            Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)])
                .areas(body);
        let [top, bottom] =
            Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(right);
        draw_tree(frame, app, left);
        draw_detail(frame, app, top, false);
        draw_events(frame, app, bottom, false);
    } else {
        let [top, bottom] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(body);
        draw_tree(frame, app, top);
        match app.pane {
            Pane::Events => draw_events(frame, app, bottom, true),
            Pane::Detail => draw_detail(frame, app, bottom, true),
        }
    }
    draw_footer(frame, app, footer);
    if app.help {
        draw_help(frame, area);
    }
}

fn draw_header(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let stats = app.shown_stats();
    let t = &app.tree;
    // Groups of kernel threads alone (listed with --all) count as the host, not as sandboxes.
    let count = |k: &str| {
        t.groups
            .iter()
            .filter(|g| g.kind == k && !g.kernel_threads)
            .count()
    };
    let mut l1 = String::from("nswatch top ");
    match &app.source {
        Source::Live => l1.push_str("live"),
        Source::Replay { name, speed } => {
            let base = name.rsplit('/').next().unwrap_or(name);
            let _ = write!(l1, "replay {base}");
            match speed {
                Some(s) => {
                    let _ = write!(l1, " x{s}");
                }
                None => l1.push_str(" max"),
            }
            if stats.finished {
                l1.push_str(" (end)");
            } else if let Some(p) = stats.progress_pct {
                let _ = write!(l1, " {p:.0}%");
            }
        }
    }
    let _ = write!(
        l1,
        " · {} ct {} sb {} pod · {} tasks",
        count("container"),
        count("sandbox"),
        t.pods.len(),
        app.live_tasks(),
    );
    let total = app.shown_rates().total.last;
    let mut l2 = format!(
        "per s fork {} exec {} exit {} ns {} · lost {}",
        total.forks, total.execs, total.exits, total.ns, stats.lost_records
    );
    if stats.bpf_lost > 0 {
        let _ = write!(l2, "+{} bpf", stats.bpf_lost);
    }
    let bpf = stats.bpf.split(':').next().unwrap_or("");
    let _ = write!(l2, " · bpf {bpf} · cpu {:.1}%", stats.cpu_pct);
    let mut first = vec![Span::styled(
        cut(&l1, area.width as usize),
        Style::new().add_modifier(Modifier::BOLD),
    )];
    if app.paused() {
        first.push(Span::styled(
            "  PAUSED",
            Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ));
    }
    let lost_style = if stats.lost_records + stats.bpf_lost > 0 {
        Style::new().fg(Color::Red)
    } else {
        Style::new()
    };
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(first),
            Line::from(Span::styled(cut(&l2, area.width as usize), lost_style)),
        ]),
        area,
    );
}

/// The tree's columns for an inner width: the name, the figures that fit, a sparkline.
struct Columns {
    name: usize,
    figures: Vec<Column>,
    spark: usize,
}

impl Columns {
    /// Width of a figure's column, its leading space included.
    const FIGURE: usize = 7;
    /// The name keeps this much before figures are given up.
    const NAME_MIN: usize = 24;
    /// Figures given up first on a narrow screen, in order (the sort column stays).
    const DROP: [Column; 7] = [
        Column::Exits,
        Column::Execs,
        Column::Forks,
        Column::Mem,
        Column::Ns,
        Column::Cpu,
        Column::Tasks,
    ];

    fn for_width(w: usize, sort: Column) -> Columns {
        let mut figures: Vec<Column> = Column::ALL
            .into_iter()
            .filter(|c| !matches!(c, Column::Name | Column::Activity))
            .collect();
        let mut spark = if w >= 110 {
            20
        } else if w >= 90 {
            10
        } else {
            0
        };
        let used = |f: &[Column], spark: usize| {
            f.len() * Self::FIGURE + if spark > 0 { spark + 1 } else { 0 }
        };
        if w.saturating_sub(used(&figures, spark)) < Self::NAME_MIN {
            spark = 0;
        }
        for drop in Self::DROP {
            if w.saturating_sub(used(&figures, spark)) >= Self::NAME_MIN {
                break;
            }
            if drop != sort {
                figures.retain(|&c| c != drop);
            }
        }
        let name = w.saturating_sub(used(&figures, spark));
        Columns {
            name,
            figures,
            spark,
        }
    }
}

/// The arrow of the sort column: which way its values go down the screen.
fn sort_arrow(sort: Sort) -> char {
    let up = (sort.column == Column::Name) != sort.reverse;
    if up {
        '▲'
    } else {
        '▼'
    }
}

/// `s` cut or padded to `w` columns; a cut ends with '…'.
fn fit(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        let mut out = String::with_capacity(w);
        out.push_str(s);
        out.extend(std::iter::repeat_n(' ', w - n));
        out
    } else if w == 0 {
        String::new()
    } else {
        let mut out: String = s.chars().take(w - 1).collect();
        out.push('…');
        out
    }
}

/// `s` cut to `w` columns, ending with '…' where cut; not padded.
fn cut(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        s.to_string()
    } else {
        fit(s, w)
    }
}

/// The newest `w` seconds of `values` (oldest first) as bars scaled to their maximum, right
/// aligned.
pub fn sparkline(values: impl Iterator<Item = u32>, w: usize) -> String {
    let v: Vec<u32> = values.collect();
    let max = v.iter().copied().max().unwrap_or(0).max(1) as u64;
    let mut out: String = std::iter::repeat_n(' ', w.saturating_sub(v.len())).collect();
    for x in v.iter().skip(v.len().saturating_sub(w)) {
        let level = if *x == 0 {
            0
        } else {
            ((*x as u64 * 8).div_ceil(max)).clamp(1, 8) as usize
        };
        out.push(SPARK[level]);
    }
    out
}

fn kind_short(kind: &str) -> &str {
    match kind {
        "container" => "ct",
        "sandbox" => "sb",
        k => k,
    }
}

fn kind_color(kind: &str) -> Color {
    match kind {
        "container" => Color::Cyan,
        "sandbox" => Color::Magenta,
        "pod" => Color::Blue,
        _ => Color::Reset,
    }
}

fn rate(n: u32) -> String {
    if n == 0 {
        format!(" {:>6}", "·")
    } else {
        format!(" {n:>6}")
    }
}

/// The text of one tree row and its colour.
fn row_text(app: &App, row: &ViewRow, cols: &Columns) -> (String, Color) {
    let t = &app.tree;
    let pad = "  ".repeat(row.depth as usize);
    let (name, tasks, group, color) = match row.item {
        Item::Pod(p) => {
            let pod = &t.pods[p];
            let n = pod.containers.len();
            (
                format!("{pad}  pod {} ({n} containers)", pod.id),
                String::new(),
                None,
                kind_color("pod"),
            )
        }
        Item::Group(g) => {
            let node = &t.groups[g];
            let mark = if node.processes.is_empty() {
                ' '
            } else if app.is_expanded(&node.id) {
                '▾'
            } else {
                '▸'
            };
            let label = if node.kind == "host" {
                "host".to_string()
            } else {
                format!("{} {}", kind_short(node.kind), node.name)
            };
            (
                format!("{pad}{mark} {label}"),
                node.tasks.to_string(),
                Some(node),
                kind_color(node.kind),
            )
        }
        Item::Process(g, p) => {
            let node = &t.groups[g];
            let proc = &node.processes[p];
            let mark = if proc.threads.len() < 2 {
                ' '
            } else if app.is_proc_expanded(&node.id, proc.pid) {
                '▾'
            } else {
                '▸'
            };
            let mut s = format!("{pad}{mark} {}", proc.pid);
            if proc.nspid != 0 && proc.nspid != proc.pid {
                let _ = write!(s, " [{}]", proc.nspid);
            }
            let _ = write!(s, " {}", proc.comm);
            if proc.origin != "born" {
                let _ = write!(s, " ({})", proc.origin);
            }
            (s, proc.threads.len().to_string(), None, Color::Reset)
        }
        Item::Thread(_, _, tid) => (
            format!("{pad}  {tid} thread"),
            String::new(),
            None,
            Color::DarkGray,
        ),
    };
    let mut line = fit(&name, cols.name);
    match group {
        Some(node) => {
            let r = app.group_rate(node.gid);
            let u = app.usage_of(node);
            for c in &cols.figures {
                match c {
                    Column::Tasks => {
                        let _ = write!(line, " {tasks:>6}");
                    }
                    Column::Cpu => match u.cpu_pct {
                        Some(p) => {
                            let _ = write!(line, " {p:>6.1}");
                        }
                        None => line.push_str("      -"),
                    },
                    Column::Mem => {
                        let m = u.mem_bytes.map_or("-".to_string(), human_bytes);
                        let _ = write!(line, " {m:>6}");
                    }
                    Column::Forks => line.push_str(&rate(r.forks)),
                    Column::Execs => line.push_str(&rate(r.execs)),
                    Column::Exits => line.push_str(&rate(r.exits)),
                    Column::Ns => line.push_str(&rate(r.ns)),
                    Column::Name | Column::Activity => {}
                }
            }
            if cols.spark > 0 {
                line.push(' ');
                let hist = app.shown_rates().get(node.gid);
                line.push_str(&sparkline(
                    hist.into_iter().flat_map(|h| h.history(cols.spark)),
                    cols.spark,
                ));
            }
        }
        None => {
            // A process shows its threads under TASKS; the rest is blank.
            for c in &cols.figures {
                if *c == Column::Tasks {
                    let _ = write!(line, " {tasks:>6}");
                } else {
                    line.push_str(&" ".repeat(Columns::FIGURE));
                }
            }
            if cols.spark > 0 {
                line.push_str(&" ".repeat(cols.spark + 1));
            }
        }
    }
    (line, color)
}

fn draw_tree(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let shown = app.rows().len();
    let mut title = format!(
        " groups ({shown} rows) sort {} {} ",
        app.sort.column.heading().to_lowercase(),
        sort_arrow(app.sort)
    );
    if let Some(s) = selection_text(app) {
        let _ = write!(title, "{s} ");
    }
    if !app.filter.is_empty() {
        let _ = write!(title, "filter \"{}\" ", app.filter);
    }
    let block = Block::new().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let cols = Columns::for_width(inner.width as usize, app.sort.column);
    let arrow = sort_arrow(app.sort);
    let mut head = if app.sort.column == Column::Name {
        fit(&format!("NAME{arrow}"), cols.name)
    } else {
        fit("NAME", cols.name)
    };
    for c in &cols.figures {
        if *c == app.sort.column {
            // The arrow after the heading, which gives up its "/s" to make room.
            let mut h = c.heading().to_string();
            if h.chars().count() >= 6 {
                h.truncate(h.trim_end_matches("/s").len());
            }
            h.push(arrow);
            let _ = write!(head, " {h:>6}");
        } else {
            let _ = write!(head, " {:>6}", c.heading());
        }
    }
    if cols.spark > 0 {
        let h = if app.sort.column == Column::Activity {
            format!("ACTIVITY{arrow}")
        } else {
            "ACTIVITY".to_string()
        };
        let _ = write!(head, " {}", fit(&h, cols.spark));
    }
    let mut lines = vec![Line::from(Span::styled(
        head,
        Style::new().add_modifier(Modifier::BOLD),
    ))];
    let height = inner.height as usize - 1;
    // Keep the selection in view, moving the window as little as possible.
    let mut scroll = app.scroll.get();
    if app.selected < scroll {
        scroll = app.selected;
    } else if height > 0 && app.selected >= scroll + height {
        scroll = app.selected + 1 - height;
    }
    scroll = scroll.min(shown.saturating_sub(height));
    app.scroll.set(scroll);
    app.drawn.set((scroll, height));
    for (i, row) in app.rows().iter().enumerate().skip(scroll).take(height) {
        let (text, color) = row_text(app, row, &cols);
        let mut style = Style::new().fg(color);
        if i == app.selected {
            style = style.add_modifier(Modifier::REVERSED);
        }
        lines.push(Line::from(Span::styled(text, style)));
    }
    if shown == 0 {
        lines.push(Line::from(if !app.filter.is_empty() {
            "(nothing matches the filter)"
        } else if !app.selecting().is_all() {
            "(nothing selected now)"
        } else {
            "(no groups yet)"
        }));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// What `-p` and `--container` asked for, as typed ("-p 1,2 --container web").
fn selection_text(app: &App) -> Option<String> {
    let s = app.selecting();
    let mut parts = Vec::new();
    if !s.pids.is_empty() {
        let pids: Vec<String> = s.pids.iter().map(u32::to_string).collect();
        parts.push(format!("-p {}", pids.join(",")));
    }
    if let Some(q) = &s.container {
        parts.push(format!("--container {}", q.as_str()));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn recent_color(r: &Recent) -> Color {
    match r.kind {
        RecentKind::Start => Color::Green,
        RecentKind::Exit => Color::Yellow,
        RecentKind::Rename => Color::Blue,
        RecentKind::Failed => Color::Red,
        RecentKind::Change => match r.syscall {
            Some("setns") => Color::Cyan,
            Some("unshare") => Color::Magenta,
            Some(_) => Color::LightBlue,
            None => Color::Reset,
        },
    }
}

/// One line of the events pane, without colour.
pub fn recent_text(r: &Recent, time: &str) -> String {
    let what = match r.kind {
        RecentKind::Start => "start",
        RecentKind::Exit => "exit",
        RecentKind::Rename => "rename",
        RecentKind::Change | RecentKind::Failed => r.syscall.unwrap_or("ns"),
    };
    let detail = match (&r.errno, r.kind) {
        (Some(e), _) => format!("{e} {}", r.flags),
        (None, RecentKind::Change) if r.flags.is_empty() || r.flags == "-" => r.changed.clone(),
        _ => r.flags.clone(),
    };
    let mut s = format!("{time} {} {} ", fit(what, 7), fit(&detail, 18));
    match r.kind {
        RecentKind::Start | RecentKind::Exit | RecentKind::Rename => {
            s.push_str(&r.group);
            if !r.comm.is_empty() {
                let _ = write!(s, " (by {})", r.comm);
            }
        }
        _ => {
            let _ = write!(s, "{}[{}]", r.comm, r.pid);
            if !r.group.is_empty() {
                let _ = write!(s, " in {}", r.group);
            }
            if r.flags.len() > 1 && !r.changed.is_empty() {
                let _ = write!(s, " ({})", r.changed);
            }
        }
    }
    s
}

fn draw_events(frame: &mut Frame<'_>, app: &App, area: Rect, narrow: bool) {
    let shown: Vec<&Recent> = app.shown_events().collect();
    let mut title = format!(" namespace events ({}) ", shown.len());
    if !app.filter.is_empty() {
        let _ = write!(title, "filter \"{}\" ", app.filter);
    }
    if narrow {
        title.push_str("· Tab: detail ");
    }
    let block = Block::new().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let w = inner.width as usize;
    let lines: Vec<Line<'_>> = shown
        .iter()
        .rev()
        .take(inner.height as usize)
        .map(|r| {
            let text = recent_text(r, &app.time_text(r.time_ns));
            Line::from(Span::styled(
                fit(text.trim_end(), w),
                Style::new().fg(recent_color(r)),
            ))
        })
        .collect();
    let lines = if lines.is_empty() {
        vec![Line::from("(none yet)")]
    } else {
        lines
    };
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The detail pane's lines for a group, in `w` columns.
pub fn detail_lines(g: &GroupNode, w: usize) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let mut l = if g.kind == "host" {
        "host".to_string()
    } else {
        format!("{} {}  [{}]", g.kind, g.name, g.id)
    };
    if let Some(rt) = &g.runtime {
        let _ = write!(l, "  runtime {rt}");
    }
    out.push(Line::from(Span::styled(
        l,
        Style::new()
            .fg(kind_color(g.kind))
            .add_modifier(Modifier::BOLD),
    )));
    if let Some(id) = g.runtime_id.as_ref().filter(|id| **id != g.name) {
        out.push(Line::from(format!("id {id}")));
    }
    out.push(Line::from(format!(
        "cgroup {}",
        g.cgroup.as_deref().unwrap_or("-")
    )));
    let mut l = format!("tasks {} in {} processes", g.tasks, g.processes.len());
    if let Some(c) = &g.creator {
        let _ = write!(l, "  creator {c}");
    }
    if let Some(p) = &g.pod {
        let _ = write!(l, "  pod {p}");
    }
    if let Some(p) = &g.parent {
        let _ = write!(l, "  in {p}");
    }
    out.push(Line::from(l));
    let list = |v: &[&str]| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(",")
        }
    };
    out.push(Line::from(format!(
        "own {}  shares with host {}",
        list(&g.owns),
        list(&g.shares_with_host)
    )));
    if !g.shares_with_pod.is_empty() {
        out.push(Line::from(format!(
            "shares with its pod {}",
            list(&g.shares_with_pod)
        )));
    }
    if g.kernel_threads {
        out.push(Line::from("kernel threads alone, counted with the host"));
    }
    // Namespaces by inode number, as lsns, ps and the NDJSON write them, as many to a line
    // as fit; own ones stand out.
    let cell = 22;
    let per_line = (w / cell).max(1);
    let mut spans = Vec::new();
    let mut n = 0;
    for (name, [_, ino]) in &g.namespaces {
        let own = g.owns.contains(name);
        let text = fit(
            &format!("{name:<6} {ino}{}", if own { "*" } else { "" }),
            cell,
        );
        let style = if own {
            Style::new().fg(kind_color(g.kind))
        } else {
            Style::new().fg(Color::DarkGray)
        };
        spans.push(Span::styled(text, style));
        n += 1;
        if n % per_line == 0 {
            out.push(Line::from(std::mem::take(&mut spans)));
        }
    }
    if !spans.is_empty() {
        out.push(Line::from(spans));
    }
    for p in &g.processes {
        let mut s = format!("{:>7}", p.pid);
        if p.nspid != 0 && p.nspid != p.pid {
            let _ = write!(s, " [{}]", p.nspid);
        }
        let _ = write!(s, " {} {}", p.comm, p.origin);
        if p.threads.len() > 1 {
            let _ = write!(s, " ({} threads)", p.threads.len());
        }
        out.push(Line::from(s));
    }
    // Long ids and paths end in '…' where the pane is too narrow for them.
    for line in &mut out {
        if let [span] = line.spans.as_mut_slice() {
            if span.content.chars().count() > w {
                span.content = cut(&span.content, w).into();
            }
        }
    }
    out
}

fn draw_detail(frame: &mut Frame<'_>, app: &App, area: Rect, narrow: bool) {
    let title = if narrow {
        " detail · Tab: events "
    } else {
        " detail "
    };
    let block = Block::new().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let lines = match (app.selected_group(), app.rows().get(app.selected)) {
        (Some(g), _) => detail_lines(g, inner.width as usize),
        (
            None,
            Some(ViewRow {
                item: Item::Pod(p), ..
            }),
        ) => {
            let pod = &app.tree.pods[*p];
            let mut v = vec![Line::from(format!("pod {}  net {}", pod.id, pod.net[1]))];
            v.extend(
                pod.containers
                    .iter()
                    .map(|c| Line::from(format!("  container {c}"))),
            );
            v
        }
        _ => vec![Line::from("(nothing selected)")],
    };
    frame.render_widget(Paragraph::new(lines), inner);
}

fn draw_footer(frame: &mut Frame<'_>, app: &App, area: Rect) {
    let line = if app.editing {
        Line::from(vec![
            Span::styled("filter: ", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(format!("{}_", app.filter)),
            Span::styled(
                "  (Enter keeps, Esc drops)",
                Style::new().fg(Color::DarkGray),
            ),
        ])
    } else if let Some(s) = &app.status {
        Line::from(Span::styled(s.clone(), Style::new().fg(Color::Green)))
    } else {
        Line::from(Span::styled(
            cut(
                "? help  q quit  / filter  < > sort  I reverse  t time  p pause  e export",
                area.width as usize,
            ),
            Style::new().fg(Color::DarkGray),
        ))
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn draw_help(frame: &mut Frame<'_>, area: Rect) {
    let w = 52.min(area.width);
    let h = (HELP.len() as u16 + 2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    frame.render_widget(Clear, popup);
    let lines: Vec<Line<'_>> = HELP
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(
                    format!(" {}", fit(k, 16)),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::raw(*what),
            ])
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(Block::new().borders(Borders::ALL).title(" keys ")),
        popup,
    );
}
