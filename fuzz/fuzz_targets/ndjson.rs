//! An NDJSON event stream read as `nswatch export` and `nswatch top --replay` read it: line
//! by line ([`Lines`]), each line through [`JsonReader`], its events into the model, the
//! Chrome trace and the terminal UI's state, the other lines as the model's announcements;
//! then the input's end, the UI drawn on a test backend, and the trace parsed back. Errors
//! are fine, panics are not; the trace is always one valid JSON document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nswatch::event::JsonReader;
use nswatch::export::chrome::ChromeTrace;
use nswatch::export::trace_writer::Sink;
use nswatch::model::json::Announcements;
use nswatch::model::Attributor;
use nswatch::ndjson::Lines;
use nswatch_tui::app::{App, Source};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

/// The trace's bytes, kept for parsing back after the trace is closed.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let out = Shared::default();
    let mut trace = ChromeTrace::new(Sink::Stream(Box::new(out.clone())), "fuzz").unwrap();
    let mut export_model = Attributor::learning();
    let mut top_model = Attributor::learning();
    let mut names = Announcements::new();
    let mut app = App::new(
        Source::Replay {
            name: "fuzz".into(),
            speed: None,
        },
        std::env::temp_dir(),
    );
    let mut reader = JsonReader::new();
    let mut lines = Lines::new(data);
    while let Ok(Some(line)) = lines.next_line() {
        assert!(line.offset < data.len() as u64 && line.number >= 1);
        if line.text.trim().is_empty() {
            continue;
        }
        match reader.read(line.text) {
            Ok(Some(ev)) => {
                trace.event(&mut export_model, &ev).unwrap();
                app.observe_named(&mut top_model, &ev, &mut names);
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
    let mut term = Terminal::new(TestBackend::new(120, 40)).unwrap();
    term.draw(|f| nswatch_tui::ui::draw(f, &app)).unwrap();
    trace.finish(&mut export_model, "end of trace").unwrap();
    let bytes = out.0.lock().unwrap();
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        panic!("the trace is not JSON ({e}): {}", String::from_utf8_lossy(&bytes));
    }
});
