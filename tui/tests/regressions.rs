//! Regressions of the UI found by other suites: the `ndjson` fuzz target's inputs
//! (tests/ndjson_regressions/) through the top's model and app, and the export key against
//! links planted in its directory.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::planted::Planted;
use serde_json::Value;
use std::os::unix::fs::MetadataExt;

/// What the `ndjson` fuzz target does with one input, minus the UI's drawing: the lines
/// through the export's trace and the top's model and app.
fn read_as_export_and_top(data: &[u8]) {
    use nswatch::event::JsonReader;
    use nswatch::export::chrome::ChromeTrace;
    use nswatch::export::trace_writer::Sink;
    use nswatch::model::json::Announcements;
    use nswatch::model::Attributor;
    use nswatch::ndjson::Lines;
    use nswatch_tui::app::{App, Source};

    let mut trace = ChromeTrace::new(Sink::Stream(Box::new(std::io::sink())), "t").unwrap();
    let (mut export_model, mut top_model) = (Attributor::learning(), Attributor::learning());
    let mut names = Announcements::new();
    let source = Source::Replay {
        name: "t".into(),
        speed: None,
    };
    let mut app = App::new(source, std::env::temp_dir());
    let mut reader = JsonReader::new();
    let mut lines = Lines::new(data);
    while let Ok(Some(line)) = lines.next_line() {
        match reader.read(line.text) {
            Ok(Some(ev)) => {
                trace.event(&mut export_model, &ev).unwrap();
                app.observe_named(&mut top_model, &ev, &mut names);
                // As `top --replay --speed max` does: the rates follow the recorded clock.
                if let Some(t) = ev.time_ns.filter(|&t| t > 0) {
                    app.advance(t);
                }
            }
            Ok(None) => {
                trace.announce(&mut export_model, line.text).unwrap();
                app.announce(&mut top_model, &mut names, line.text);
            }
            Err(_) => break,
        }
    }
    app.end_of_input(&mut top_model);
    app.refresh(&top_model, 1);
    trace.finish(&mut export_model, "end").unwrap();
}

#[test]
fn ndjson_regressions_do_not_panic_in_top() {
    let dir = common::repo_root().join("tests/ndjson_regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        read_as_export_and_top(&std::fs::read(entry.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n >= 1, "the regression inputs are there");
}

/// `top`'s export key takes the next free name past whatever is at one, dangling
/// links included, and never creates a link's target.
#[test]
fn top_export_skips_names_taken_by_links() {
    use nswatch_tui::app::{App, Source};
    let p = Planted::new();
    // Every name the export can give: links for each millisecond, until those planted
    // reach more than a second past the clock (planting takes a while on a busy machine).
    let secs = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let mut planted_to = secs();
    let start = planted_to;
    while planted_to <= secs() + 1 {
        assert!(
            planted_to < start + 60,
            "planting cannot keep up with the clock"
        );
        let s = planted_to;
        for ms in 0..1000 {
            p.link(
                &format!("nswatch-top-{s}.{ms:03}.json"),
                &format!("created-{s}-{ms}"),
            );
        }
        planted_to += 1;
    }
    let app = App::new(Source::Live, p.dir.path());
    let path = app.export().unwrap();
    p.assert_untouched();
    let m = std::fs::symlink_metadata(&path).unwrap();
    assert!(m.is_file(), "{}", path.display());
    assert!(
        path.to_str().unwrap().ends_with("-1.json"),
        "{}",
        path.display()
    );
    assert_eq!(m.mode() & 0o777, 0o600);
    let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(v["groups"].is_array());
}
