//! `nswatch top`'s costs on a big machine: 1,000 containers of 50 tasks each (10 processes
//! of 5 threads) plus the host, drawn into a 200x60 TestBackend.
//!
//!   CARGO_TARGET_DIR=/tmp/target-tui cargo bench -p nswatch-tui --bench tui
//!
//! Groups:
//!   top/draw_collapsed     one frame, every group folded (what `top` shows at start);
//!   top/draw_expanded      one frame with every group unfolded (50,000 rows, 58 drawn);
//!   top/draw_80x24         one frame on the smallest screen;
//!   top/refresh            a new snapshot of the model (tree::build) and its layout, done
//!                          at most every 250 ms while the model changes, never when idle.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use nswatch::model::{Attributor, Naming};
use nswatch::nsset::NsSet;
use nswatch::record::NsLink;
use nswatch::{Body, Event};
use nswatch_tui::app::{App, Source};
use nswatch_tui::ui;
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const GROUPS: u64 = 1000;
const PROCS: u32 = 10;
const THREADS: u32 = 5;
const S: u64 = 1_000_000_000;

fn set(inos: [u64; 7]) -> NsSet {
    NsSet::from_links(inos.map(|ino| NsLink { dev: 4, ino }))
}

fn machine() -> (Attributor, App) {
    let host = set([1, 2, 3, 4, 5, 6, 7]);
    let mut model = Attributor::new(host);
    let mut app = App::new(Source::Live, std::env::temp_dir());
    let sets: Vec<NsSet> = (0..GROUPS)
        .map(|g| {
            let b = 10_000 + g * 10;
            set([b, b + 1, b + 2, b + 3, 5, b + 5, 7])
        })
        .collect();
    app.advance(S);
    let mut tid = 1000u32;
    for (g, ns) in sets.iter().enumerate() {
        for p in 0..PROCS {
            let pid = tid;
            for _ in 0..THREADS {
                let ev = Event {
                    time_ns: Some(S),
                    cpu: None,
                    pid: Some(pid),
                    tid: Some(tid),
                    synthesized: true,
                    body: Body::Namespaces {
                        ns,
                        comm: Some(if p == 0 { "init" } else { "worker" }.into()),
                        cause: None,
                    },
                };
                app.observe(&mut model, &ev);
                tid += 1;
            }
        }
        let id = model.task(tid - 1).unwrap().current.group;
        model.set_naming(
            id,
            Naming {
                runtime: Some("containerd".into()),
                runtime_id: Some(format!("{g:064x}")),
                name: Some(format!("app-{g}")),
                cgroup: Some(format!("/kubepods/pod{g}/{g:064x}")),
                ..Naming::default()
            },
        );
    }
    // A second of activity everywhere, so every row has rates and a sparkline.
    for g in 0..GROUPS as u32 {
        let pid = 1000 + g * PROCS * THREADS;
        let ev = Event {
            time_ns: Some(S + 1),
            cpu: None,
            pid: Some(pid),
            tid: Some(pid),
            synthesized: false,
            body: Body::Comm {
                comm: "worker".into(),
                exec: true,
            },
        };
        app.observe(&mut model, &ev);
    }
    app.advance(2 * S);
    app.refresh(&model, 1);
    (model, app)
}

fn frame(app: &App, term: &mut Terminal<TestBackend>) {
    term.draw(|f| ui::draw(f, black_box(app))).unwrap();
}

fn bench(c: &mut Criterion) {
    let (model, mut app) = machine();
    assert_eq!(model.live_tasks(), (GROUPS as usize) * 50);
    let mut g = c.benchmark_group("top");
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
    // A frame after the selection moved: ratatui diffs buffers, so an unchanged screen
    // would measure less than a real redraw does.
    let down = KeyEvent::new(KeyCode::Down, KeyModifiers::NONE);
    let up = KeyEvent::new(KeyCode::Up, KeyModifiers::NONE);
    let mut flip = false;
    g.bench_function("draw_collapsed", |b| {
        b.iter(|| {
            app.handle_key(if flip { up } else { down });
            flip = !flip;
            frame(&app, &mut term)
        })
    });
    let mut small = Terminal::new(TestBackend::new(80, 24)).unwrap();
    g.bench_function("draw_80x24", |b| {
        b.iter(|| {
            app.handle_key(if flip { up } else { down });
            flip = !flip;
            frame(&app, &mut small)
        })
    });
    // Unfold every group.
    app.handle_key(KeyEvent::new(KeyCode::Home, KeyModifiers::NONE));
    for _ in 0..GROUPS {
        app.handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
        for _ in 0..=PROCS {
            app.handle_key(down);
        }
    }
    assert!(app.rows().len() > 10_000);
    g.bench_function("draw_expanded", |b| {
        b.iter(|| {
            app.handle_key(if flip { up } else { down });
            flip = !flip;
            frame(&app, &mut term)
        })
    });
    g.sample_size(20);
    g.bench_function("refresh", |b| b.iter(|| app.refresh(black_box(&model), 1)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
