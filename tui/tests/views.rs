//! `nswatch top`'s views on ratatui's TestBackend, from a model fed by known events: the
//! lines of the screen are compared exactly.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use nswatch::bpf::event::{Syscall, Target};
use nswatch::bpf::Cause;
use nswatch::model::{Attributor, GroupId, Naming};
use nswatch::nsset::NsSet;
use nswatch::record::NsLink;
use nswatch::{Body, Event};
use nswatch_tui::app::{App, Source};
use nswatch_tui::ui;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const S: u64 = 1_000_000_000;
const T0: u64 = 100 * S;

fn link(ino: u64) -> NsLink {
    NsLink { dev: 4, ino }
}

/// net, uts, ipc, pid, user, mnt, cgroup
fn set(inos: [u64; 7]) -> NsSet {
    NsSet::from_links(inos.map(link))
}

const HOST: [u64; 7] = [1, 2, 3, 4, 5, 6, 7];
const WEB: [u64; 7] = [10, 11, 12, 14, 5, 16, 7];
const BLUE: [u64; 7] = [20, 2, 3, 4, 5, 6, 7];

fn ev<'a>(time: u64, pid: u32, tid: u32, body: Body<'a>) -> Event<'a> {
    Event {
        time_ns: Some(time),
        cpu: Some(0),
        pid: Some(pid),
        tid: Some(tid),
        synthesized: false,
        body,
    }
}

fn cause(syscall: Syscall, flags: u64, target: Option<(i32, Target)>, ret: i64) -> Cause {
    Cause {
        syscall,
        flags,
        target,
        ret,
        enter_ns: 0,
        exit_ns: 0,
        pid: 300,
        tid: 300,
        cpu: 0,
        comm: "ip".into(),
        before: [0; 10],
        after: [0; 10],
        child_tid: None,
        dev: 4,
        flags_unread: false,
        cgroup: 0,
    }
}

/// A machine with a host (pid 1 and a shell), a runc container "web-1" (two processes, one
/// with two threads) and a netns sandbox "blue" that `ip` joined with setns; then, in one
/// second, three forks and an exec in the container, a failed setns, and the second closed.
fn scene() -> (Attributor, App) {
    let host = set(HOST);
    let web = set(WEB);
    let blue = set(BLUE);
    let mut model = Attributor::new(host);
    let mut app = App::new(Source::Live, std::env::temp_dir());
    let ns = |s: &'static NsSet, comm: &'static str| Body::Namespaces {
        ns: s,
        comm: Some(comm.into()),
        cause: None,
    };
    // Leak the sets: events borrow them, and a test's few bytes do not matter.
    let host: &'static NsSet = Box::leak(Box::new(host));
    let web: &'static NsSet = Box::leak(Box::new(web));
    let blue: &'static NsSet = Box::leak(Box::new(blue));
    let synth = |m: &mut Attributor, a: &mut App, pid: u32, tid: u32, s, comm| {
        let mut e = ev(T0, pid, tid, ns(s, comm));
        e.synthesized = true;
        a.observe(m, &e);
        a.observe(
            m,
            &Event {
                synthesized: true,
                ..ev(
                    T0,
                    pid,
                    tid,
                    Body::Comm {
                        comm: comm.into(),
                        exec: false,
                    },
                )
            },
        );
    };
    synth(&mut model, &mut app, 1, 1, host, "systemd");
    synth(&mut model, &mut app, 200, 200, host, "bash");
    synth(&mut model, &mut app, 500, 500, web, "nginx");
    synth(&mut model, &mut app, 501, 501, web, "nginx");
    synth(&mut model, &mut app, 501, 502, web, "nginx");
    model.set_nspid(500, 1);
    model.set_nspid(501, 7);
    let web_id = model.task(500).unwrap().current.group;
    model.set_naming(
        web_id,
        Naming {
            runtime: Some("runc".into()),
            runtime_id: Some("web-1".into()),
            name: Some("web-1".into()),
            cgroup: Some("/runc-web-1.scope".into()),
            ..Naming::default()
        },
    );
    app.advance(T0);
    // `ip netns exec blue`: ip (300) forks from bash, then setns into blue's net.
    app.observe(
        &mut model,
        &ev(
            T0 + 1,
            300,
            300,
            Body::Fork {
                ppid: 200,
                ptid: 200,
            },
        ),
    );
    app.observe(&mut model, &ev(T0 + 2, 300, 300, ns(host, "ip")));
    let setns = Box::leak(Box::new(cause(
        Syscall::Setns,
        libc::CLONE_NEWNET as u64,
        Some((
            5,
            Target::Nsfs {
                ns_type: libc::CLONE_NEWNET as u32,
                ino: 20,
            },
        )),
        0,
    )));
    app.observe(
        &mut model,
        &ev(
            T0 + 10_000_000,
            300,
            300,
            Body::Namespaces {
                ns: blue,
                comm: Some("ip".into()),
                cause: Some(setns),
            },
        ),
    );
    let blue_id = model.task(300).unwrap().current.group;
    model.set_naming(
        blue_id,
        Naming {
            runtime: Some("ip-netns".into()),
            runtime_id: Some("blue".into()),
            name: Some("blue".into()),
            ..Naming::default()
        },
    );
    // Three forks and an exec in web-1.
    for (i, tid) in [510u32, 511, 512].into_iter().enumerate() {
        let t = T0 + 100_000_000 * (i as u64 + 1);
        app.observe(
            &mut model,
            &ev(
                t,
                tid,
                tid,
                Body::Fork {
                    ppid: 500,
                    ptid: 500,
                },
            ),
        );
        app.observe(&mut model, &ev(t, tid, tid, ns(web, "nginx")));
    }
    app.observe(
        &mut model,
        &ev(
            T0 + 500_000_000,
            510,
            510,
            Body::Comm {
                comm: "worker".into(),
                exec: true,
            },
        ),
    );
    app.observe(
        &mut model,
        &ev(
            T0 + 600_000_000,
            512,
            512,
            Body::Exit {
                ppid: 500,
                ptid: 500,
            },
        ),
    );
    // A failed setns: EINVAL on a file that is no namespace.
    let bad = Box::leak(Box::new(Cause {
        enter_ns: T0 + 700_000_000,
        pid: 200,
        tid: 200,
        comm: "nsenter".into(),
        ..cause(Syscall::Setns, 0, Some((3, Target::Other)), -22)
    }));
    app.observe(
        &mut model,
        &Event {
            time_ns: Some(T0 + 700_000_000),
            cpu: Some(0),
            pid: Some(200),
            tid: Some(200),
            synthesized: false,
            body: Body::NsSyscall { call: bad },
        },
    );
    app.advance(T0 + S);
    app.stats.bpf = "on".into();
    app.stats.cpu_pct = 0.4;
    app.refresh(&model, 1);
    assert_eq!(model.group(web_id).name(), "web-1");
    assert_ne!(blue_id, GroupId::HOST);
    (model, app)
}

fn screen(app: &App, w: u16, h: u16) -> Vec<String> {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
    term.draw(|f| ui::draw(f, app)).unwrap();
    let buf = term.backend().buffer();
    (0..h)
        .map(|y| {
            let mut s = String::new();
            for x in 0..w {
                s.push_str(buf[(x, y)].symbol());
            }
            s.trim_end().to_string()
        })
        .collect()
}

fn key(app: &mut App, code: KeyCode) {
    app.handle_key(KeyEvent::new(code, KeyModifiers::NONE));
}

fn dump(lines: &[String]) -> String {
    lines.join("\n")
}

/// Prints the screen when a comparison fails, so that the difference reads at a glance.
fn assert_lines(screen: &[String], expected: &[(usize, &str)]) {
    for (i, want) in expected {
        assert_eq!(
            screen[*i],
            *want,
            "line {i} differs; the screen:\n{}",
            dump(screen)
        );
    }
}

const HEADER: [(usize, &str); 2] = [
    (0, "nswatch top live · 1 ct 1 sb 0 pod · 8 tasks"),
    (
        1,
        "per s fork 4 exec 1 exit 1 ns 1 · lost 0 · bpf on · cpu 0.4%",
    ),
];

const EVENTS_80: [(usize, &str); 5] = [
    (
        14,
        "┌ namespace events (4) · Tab: detail ──────────────────────────────────────────┐",
    ),
    (
        15,
        "│    0.700 setns   EINVAL fd other    nsenter[200] in host                     │",
    ),
    (
        16,
        "│    0.010 setns   net:20             ip[300] in sb-20 (net)                   │",
    ),
    (
        17,
        "│    0.010 start   sandbox            sb-20 (by ip)                            │",
    ),
    (
        18,
        "│    0.000 start   container          ct-14                                    │",
    ),
];

#[test]
fn main_view_at_80x24() {
    let (_m, app) = scene();
    let s = screen(&app, 80, 24);
    assert_eq!(s.len(), 24);
    assert_lines(&s, &HEADER);
    assert_lines(
        &s,
        &[
            (
                2,
                "┌ groups (3 rows) sort activity ▼ ─────────────────────────────────────────────┐",
            ),
            (
                3,
                "│NAME                           TASKS   CPU%    MEM FORK/s EXEC/s EXIT/s   NS/s│",
            ),
            (
                4,
                "│▸ ct web-1                         5      -      -      3      1      1      ·│",
            ),
            (
                5,
                "│▸ host                             2      -      -      1      ·      ·      ·│",
            ),
            (
                6,
                "│▸ sb blue                          1      -      -      ·      ·      ·      1│",
            ),
            (
                7,
                "│                                                                              │",
            ),
            (
                13,
                "└──────────────────────────────────────────────────────────────────────────────┘",
            ),
            (
                23,
                "? help  q quit  / filter  < > sort  I reverse  t time  p pause  e export",
            ),
        ],
    );
    assert_lines(&s, &EVENTS_80);
    // Every line fits the screen: nothing wraps or spills at 80 columns.
    assert!(s.iter().all(|l| l.chars().count() <= 80));
}

#[test]
fn expanded_group_shows_processes_and_threads() {
    let (_m, mut app) = scene();
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Enter);
    let s = screen(&app, 80, 24);
    assert_lines(
        &s,
        &[
            (
                2,
                "┌ groups (8 rows) sort activity ▼ ─────────────────────────────────────────────┐",
            ),
            (
                4,
                "│▾ ct web-1                         5      -      -      3      1      1      ·│",
            ),
            (
                5,
                "│    500 [1] nginx                  1                                          │",
            ),
            (
                6,
                "│  ▾ 501 [7] nginx                  2                                          │",
            ),
            (
                7,
                "│      502 thread                                                              │",
            ),
            (
                8,
                "│    510 worker                     1                                          │",
            ),
            (
                9,
                "│    511 nginx                      1                                          │",
            ),
            (
                10,
                "│▸ host                             2      -      -      1      ·      ·      ·│",
            ),
            (
                11,
                "│▸ sb blue                          1      -      -      ·      ·      ·      1│",
            ),
        ],
    );
    // Left on a thread goes to its group; Left again folds it.
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Left);
    key(&mut app, KeyCode::Left);
    let s = screen(&app, 80, 24);
    assert_lines(
        &s,
        &[
            (
                2,
                "┌ groups (3 rows) sort activity ▼ ─────────────────────────────────────────────┐",
            ),
            (
                4,
                "│▸ ct web-1                         5      -      -      3      1      1      ·│",
            ),
        ],
    );
}

#[test]
fn detail_pane_at_80x24() {
    let (_m, mut app) = scene();
    key(&mut app, KeyCode::Tab);
    let s = screen(&app, 80, 24);
    assert_lines(&s, &HEADER);
    assert_lines(
        &s,
        &[
            (
                14,
                "┌ detail · Tab: events ────────────────────────────────────────────────────────┐",
            ),
            (
                15,
                "│container web-1  [ct-14]  runtime runc                                        │",
            ),
            (
                16,
                "│cgroup /runc-web-1.scope                                                      │",
            ),
            (
                17,
                "│tasks 5 in 4 processes                                                        │",
            ),
            (
                18,
                "│own net,uts,ipc,pid,mnt  shares with host user,cgroup                         │",
            ),
            (
                19,
                "│cgroup 7              ipc    12*            mnt    16*                        │",
            ),
            (
                20,
                "│net    10*            pid    14*            user   5                          │",
            ),
            (
                21,
                "│uts    11*                                                                    │",
            ),
            (
                22,
                "└──────────────────────────────────────────────────────────────────────────────┘",
            ),
        ],
    );
    // Tab again: back to the events.
    key(&mut app, KeyCode::Tab);
    assert_lines(&screen(&app, 80, 24), &EVENTS_80);
}

#[test]
fn wide_screen_shows_tree_detail_and_events() {
    let (_m, mut app) = scene();
    key(&mut app, KeyCode::Char('j'));
    key(&mut app, KeyCode::Char('j'));
    let s = screen(&app, 160, 30);
    assert_lines(
        &s,
        &[
            (2, "┌ groups (3 rows) sort activity ▼ ──────────────────────────────────────────────────────────┐┌ detail ─────────────────────────────────────────────────────────┐"),
            (3, "│NAME                             TASKS   CPU%    MEM FORK/s EXEC/s EXIT/s   NS/s ACTIVITY▼ ││sandbox blue  [sb-20]  runtime ip-netns                          │"),
            (5, "│▸ host                               2      -      -      1      ·      ·      ·          █││tasks 1 in 1 processes  creator ip                               │"),
            (6, "│▸ sb blue                            1      -      -      ·      ·      ·      1          █││own net  shares with host uts,ipc,pid,user,mnt,cgroup            │"),
            (8, "│                                                                                           ││mnt    6              net    20*                                 │"),
            (11, "│                                                                                           ││    300 ip created                                               │"),
            (16, "│                                                                                           │┌ namespace events (4) ───────────────────────────────────────────┐"),
            (17, "│                                                                                           ││    0.700 setns   EINVAL fd other    nsenter[200] in host        │"),
        ],
    );
}

#[test]
fn filter_narrows_and_escape_drops_it() {
    let (_m, mut app) = scene();
    key(&mut app, KeyCode::Char('/'));
    for c in "blu".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    let s = screen(&app, 80, 24);
    assert_lines(
        &s,
        &[
            (2, "┌ groups (1 rows) sort activity ▼ filter \"blu\" ────────────────────────────────┐"),
            (4, "│▸ sb blue                          1      -      -      ·      ·      ·      1│"),
            (5, "│                                                                              │"),
            (23, "filter: blu_  (Enter keeps, Esc drops)"),
        ],
    );
    // A process's command matches too: "worker" finds web-1.
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('/'));
    for c in "WORK".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    let s = screen(&app, 80, 24);
    assert_lines(
        &s,
        &[
            (
                4,
                "│▸ ct web-1                         5      -      -      3      1      1      ·│",
            ),
            (
                5,
                "│                                                                              │",
            ),
            (
                23,
                "? help  q quit  / filter  < > sort  I reverse  t time  p pause  e export",
            ),
        ],
    );
}

#[test]
fn sort_by_any_column_and_reverse() {
    let (_m, mut app) = scene();
    // web-1 has a cgroup of its own: its CPU and memory show, the others' do not.
    app.set_usage(
        [(
            "/runc-web-1.scope".to_string(),
            nswatch_tui::usage::Usage {
                cpu_pct: Some(12.5),
                mem_bytes: Some(300 << 20),
            },
        )]
        .into_iter()
        .collect(),
    );
    // `>` from the default (activity, the last column) wraps to the name: A to Z, and
    // the host is sorted like any group.
    key(&mut app, KeyCode::Char('>'));
    let s = screen(&app, 80, 24);
    assert_lines(
        &s,
        &[
            (
                2,
                "┌ groups (3 rows) sort name ▲ ─────────────────────────────────────────────────┐",
            ),
            (
                3,
                "│NAME▲                          TASKS   CPU%    MEM FORK/s EXEC/s EXIT/s   NS/s│",
            ),
            (
                4,
                "│▸ sb blue                          1      -      -      ·      ·      ·      1│",
            ),
            (
                5,
                "│▸ host                             2      -      -      1      ·      ·      ·│",
            ),
            (
                6,
                "│▸ ct web-1                         5   12.5   300M      3      1      1      ·│",
            ),
        ],
    );
    // Reversed: Z to A.
    key(&mut app, KeyCode::Char('I'));
    let s = screen(&app, 80, 24);
    assert!(s[2].starts_with("┌ groups (3 rows) sort name ▼ ─"));
    assert!(s[4].starts_with("│▸ ct web-1"), "{}", dump(&s));
    assert_eq!(
        s[6],
        "│▸ sb blue                          1      -      -      ·      ·      ·      1│"
    );
    // `<` twice from the name: activity, then NS/s, still reversed (fewest first).
    key(&mut app, KeyCode::Char('<'));
    key(&mut app, KeyCode::Char('<'));
    let s = screen(&app, 80, 24);
    assert_lines(
        &s,
        &[
            (
                3,
                "│NAME                           TASKS   CPU%    MEM FORK/s EXEC/s EXIT/s  NS/s▲│",
            ),
            (
                6,
                "│▸ sb blue                          1      -      -      ·      ·      ·      1│",
            ),
        ],
    );
    // Largest first again, then `s` four times: round to CPU%.
    key(&mut app, KeyCode::Char('r'));
    let s = screen(&app, 80, 24);
    assert_eq!(
        s[4],
        "│▸ sb blue                          1      -      -      ·      ·      ·      1│"
    );
    for _ in 0..4 {
        key(&mut app, KeyCode::Char('s'));
    }
    let s = screen(&app, 80, 24);
    assert_lines(
        &s,
        &[
            (
                3,
                "│NAME                           TASKS  CPU%▼    MEM FORK/s EXEC/s EXIT/s   NS/s│",
            ),
            (
                4,
                "│▸ ct web-1                         5   12.5   300M      3      1      1      ·│",
            ),
        ],
    );
}

#[test]
fn pause_freezes_the_view_while_events_go_on() {
    let (mut m, mut app) = scene();
    key(&mut app, KeyCode::Char('p'));
    // A new container starts while paused.
    let db: &'static NsSet = Box::leak(Box::new(set([30, 31, 32, 34, 5, 36, 7])));
    app.observe(
        &mut m,
        &ev(
            T0 + S + 1,
            900,
            900,
            Body::Namespaces {
                ns: db,
                comm: Some("postgres".into()),
                cause: None,
            },
        ),
    );
    app.advance(T0 + 2 * S);
    app.refresh(&m, 1);
    let s = screen(&app, 80, 24);
    assert_lines(
        &s,
        &[
            (0, "nswatch top live · 1 ct 1 sb 0 pod · 8 tasks  PAUSED"),
            (
                1,
                "per s fork 4 exec 1 exit 1 ns 1 · lost 0 · bpf on · cpu 0.4%",
            ),
            (
                2,
                "┌ groups (3 rows) sort activity ▼ ─────────────────────────────────────────────┐",
            ),
        ],
    );
    assert_lines(&s, &EVENTS_80);
    key(&mut app, KeyCode::Char('p'));
    assert!(app.model_changed());
    app.refresh(&m, 1);
    let s = screen(&app, 80, 24);
    assert_lines(
        &s,
        &[
            (0, "nswatch top live · 2 ct 1 sb 0 pod · 9 tasks"),
            (
                1,
                "per s fork 0 exec 0 exit 0 ns 0 · lost 0 · bpf on · cpu 0.4%",
            ),
            (
                7,
                "│▸ ct ct-34                         1      -      -      ·      ·      ·      ·│",
            ),
            (
                15,
                "│    1.000 start   container          ct-34                                    │",
            ),
        ],
    );
}

#[test]
fn help_overlays_and_any_key_closes_it() {
    let (_m, mut app) = scene();
    key(&mut app, KeyCode::Char('?'));
    let s = screen(&app, 80, 24);
    assert_lines(
        &s,
        &[
            (
                4,
                "│▸ ct web-1   ┌ keys ────────────────────────────────────────────┐     1      ·│",
            ),
            (
                5,
                "│▸ host       │ ↑ ↓  j k        move                             │     ·      ·│",
            ),
            (
                10,
                "│             │ < >  s F6       sort by the column left, right   │             │",
            ),
            (
                14,
                "┌ namespace ev│ e               export the view as JSON          │─────────────┐",
            ),
            (
                18,
                "│    0.000 sta└──────────────────────────────────────────────────┘             │",
            ),
        ],
    );
    key(&mut app, KeyCode::Char('x'));
    assert!(!app.help);
    assert_lines(&screen(&app, 80, 24), &EVENTS_80);
}

#[test]
fn export_writes_the_view_and_says_where() {
    let (_m, mut app) = scene();
    let dir = tempfile::tempdir().unwrap();
    app.export_dir = dir.path().to_path_buf();
    key(&mut app, KeyCode::Char('e'));
    let status = app.status.clone().unwrap();
    let path = status.strip_prefix("exported to ").expect(&status);
    let s = screen(&app, 200, 24);
    assert_eq!(s[23], status);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let names: Vec<&str> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web-1", "host", "blue"]);
    assert_eq!(v["sort"], "activity");
    assert_eq!(v["sort_reverse"], false);
    assert_eq!(v["groups"][0]["rates"]["forks"], 3);
    assert_eq!(v["groups"][0]["history"], serde_json::json!([5]));
    assert_eq!(
        v["groups"][0]["namespaces"]["pid"],
        serde_json::json!({"dev": 4, "ino": 14})
    );
    assert_eq!(v["groups"][0]["runtime"], "runc");
    assert_eq!(v["rates"]["forks"], 4);
    assert_eq!(v["events"][3]["kind"], "failed");
    assert_eq!(v["events"][3]["errno"], "EINVAL");
    assert_eq!(v["events"][2]["flags"], "net:20");
    assert_eq!(v["live_tasks"], 8);
}

#[test]
fn selection_stays_in_view_when_scrolling() {
    let (_m, mut app) = scene();
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::End);
    // At 80x20 the tree shows 6 of its 7 rows: scrolled by one so that the last (blue),
    // selected, shows.
    let s = screen(&app, 80, 20);
    assert_lines(
        &s,
        &[
            (
                4,
                "│    500 [1] nginx                  1                                          │",
            ),
            (
                9,
                "│▸ sb blue                          1      -      -      ·      ·      ·      1│",
            ),
            (
                10,
                "└──────────────────────────────────────────────────────────────────────────────┘",
            ),
        ],
    );
    assert_eq!(app.scroll.get(), 1);
}

#[test]
fn small_screens_draw_without_panicking_and_keep_the_header() {
    let (_m, app) = scene();
    for (w, h) in [(1, 1), (20, 5), (40, 10), (80, 3)] {
        let s = screen(&app, w, h);
        assert_eq!(s.len(), h as usize);
        if h >= 3 {
            // Cut with '…' where it does not fit.
            let head = HEADER[0].1;
            let want: String = if head.chars().count() > w as usize {
                let mut c: String = head.chars().take(w as usize - 1).collect();
                c.push('…');
                c
            } else {
                head.to_string()
            };
            assert_eq!(s[0], want);
        }
    }
    let s = screen(&app, 40, 10);
    // The name keeps its room; the figures after TASKS and CPU% give way.
    assert_eq!(s[3], "│NAME                      TASKS   CPU%│");
    assert_eq!(s[4], "│▸ ct web-1                    5      -│");
}

#[test]
fn sparkline_scales_to_its_maximum() {
    assert_eq!(ui::sparkline([0, 1, 2, 4, 8].into_iter(), 6), "  ▁▂▄█");
    assert_eq!(ui::sparkline([5, 5].into_iter(), 1), "█");
    assert_eq!(ui::sparkline(std::iter::empty(), 3), "   ");
}

#[test]
fn selection_follows_its_group_when_another_goes() {
    let (mut m, mut app) = scene();
    // Reversed: the least busy first, web-1 last.
    key(&mut app, KeyCode::Char('I'));
    key(&mut app, KeyCode::End);
    assert_eq!(app.selected_group().unwrap().name, "web-1");
    // blue's only task exits: the snapshot loses a row above the selection.
    app.observe(
        &mut m,
        &ev(
            T0 + S + 5,
            300,
            300,
            Body::Exit {
                ppid: 200,
                ptid: 200,
            },
        ),
    );
    // Its end is declared after the exit linger, or when the input ends: here.
    app.end_of_input(&mut m);
    app.refresh(&m, 1);
    assert_eq!(app.selected, 1);
    assert_eq!(app.selected_group().unwrap().name, "web-1");
    let s = screen(&app, 80, 24);
    assert_lines(
        &s,
        &[
            (
                2,
                "┌ groups (2 rows) sort activity ▲ ─────────────────────────────────────────────┐",
            ),
            (
                5,
                "│▸ ct web-1                         5      -      -      3      1      1      ·│",
            ),
            (
                15,
                "│    1.000 exit    sandbox ip-netns   blue (by ip)                             │",
            ),
        ],
    );
}

#[test]
fn filter_narrows_the_events_pane_too() {
    let (_m, mut app) = scene();
    key(&mut app, KeyCode::Char('/'));
    for c in "blu".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    let s = screen(&app, 80, 24);
    // blue's events, written under the id it had then (sb-20), and nothing else.
    assert_lines(
        &s,
        &[
            (
                14,
                "┌ namespace events (2) filter \"blu\" · Tab: detail ─────────────────────────────┐",
            ),
            (
                15,
                "│    0.010 setns   net:20             ip[300] in sb-20 (net)                   │",
            ),
            (
                16,
                "│    0.010 start   sandbox            sb-20 (by ip)                            │",
            ),
            (
                17,
                "│                                                                              │",
            ),
        ],
    );
    // A command name narrows it as well.
    key(&mut app, KeyCode::Char('/'));
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('/'));
    for c in "nsenter".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    let s = screen(&app, 80, 24);
    assert!(
        s[14].starts_with("┌ namespace events (1) filter \"nsenter\""),
        "{}",
        dump(&s)
    );
    assert!(s[15].contains("nsenter[200] in host"), "{}", dump(&s));
}

#[test]
fn times_are_wall_clock_where_known_and_t_toggles() {
    let (_m, mut app) = scene();
    // Without a wall clock (a recording that gave none) the times are relative.
    assert_eq!(app.time_text(T0 + 700_000_000), "    0.700");
    // Event clock T0 is wall-clock 12:34:56.000 local time.
    // SAFETY: mktime reads and normalizes a plain struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = 2026 - 1900;
    tm.tm_mon = 0;
    tm.tm_mday = 15;
    tm.tm_hour = 12;
    tm.tm_min = 34;
    tm.tm_sec = 56;
    tm.tm_isdst = -1;
    let wall = unsafe { libc::mktime(&mut tm) } as i128 * 1_000_000_000;
    app.set_wall_offset(wall - T0 as i128);
    let s = screen(&app, 80, 24);
    assert_eq!(
        s[15],
        "│12:34:56.700 setns   EINVAL fd other    nsenter[200] in host                  │"
    );
    key(&mut app, KeyCode::Char('t'));
    assert_lines(&screen(&app, 80, 24), &EVENTS_80);
}

#[test]
fn narrow_panes_cut_ids_with_an_ellipsis() {
    let (_m, mut app) = scene();
    let s = screen(&app, 44, 24);
    assert!(
        s[15].ends_with("nsen…│") && s[23].ends_with("I rever…"),
        "the events pane cuts its lines with '…':\n{}",
        dump(&s)
    );
    key(&mut app, KeyCode::Tab);
    let s = screen(&app, 30, 24);
    assert_eq!(s[15], "│container web-1  [ct-14]  r…│", "{}", dump(&s));
    assert_eq!(s[16], "│cgroup /runc-web-1.scope    │");
}

#[test]
fn the_order_follows_each_new_second() {
    let (mut m, mut app) = scene();
    let order = |app: &App| -> Vec<String> {
        app.rows()
            .iter()
            .filter_map(|r| match r.item {
                nswatch_tui::app::Item::Group(g) => Some(app.tree.groups[g].name.clone()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(order(&app), ["web-1", "host", "blue"]);
    // In the next second blue changes namespaces three times, web-1 does nothing: once the
    // second closes blue leads, with no change to the model's groups in between.
    for i in 0..3u64 {
        let call = Box::leak(Box::new(Cause {
            enter_ns: T0 + S + 1 + i,
            pid: 300,
            tid: 300,
            ..cause(
                Syscall::Setns,
                libc::CLONE_NEWNET as u64,
                Some((
                    5,
                    Target::Nsfs {
                        ns_type: libc::CLONE_NEWNET as u32,
                        ino: 20,
                    },
                )),
                0,
            )
        }));
        app.observe(
            &mut m,
            &Event {
                time_ns: Some(T0 + S + 1 + i),
                cpu: Some(0),
                pid: Some(300),
                tid: Some(300),
                synthesized: false,
                body: Body::NsSyscall { call },
            },
        );
    }
    app.advance(T0 + 2 * S);
    assert_eq!(order(&app), ["blue", "web-1", "host"]);
}
