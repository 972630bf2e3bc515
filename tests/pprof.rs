//! `nswatch report --by container --format pprof -o FILE`: a gzipped profile.proto that
//! `go tool pprof` (Debian's golang-go) reads, whose totals per container (samples and
//! period) are `report --by container`'s.

mod common;
use common::{fixture, nswatch, require_live};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// `go tool pprof ARGS…`'s standard output, or `None` (skipping, or failing under
/// NSWATCH_REQUIRE_LIVE=1) when Go is not installed.
fn go_pprof(args: &[&str]) -> Option<String> {
    let out = match Command::new("go")
        .arg("tool")
        .arg("pprof")
        .args(args)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            assert!(
                !require_live(),
                "go: {e} (apt-get install golang-go) and NSWATCH_REQUIRE_LIVE=1"
            );
            eprintln!("SKIP: go: {e} (apt-get install golang-go)");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "go tool pprof {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap())
}

/// Per container label: (samples, period), from `go tool pprof -raw`'s samples (a line of
/// values and location ids, then a line of labels).
fn raw_totals(raw: &str) -> BTreeMap<String, (u64, u64)> {
    let mut totals = BTreeMap::new();
    let mut lines = raw
        .lines()
        .skip_while(|l| !l.starts_with("Samples:"))
        .skip(2);
    while let Some(values) = lines.next() {
        let Some((v, _)) = values.split_once(':') else {
            break;
        };
        let v: Vec<u64> = v.split_whitespace().map(|n| n.parse().unwrap()).collect();
        if v.len() != 2 {
            break;
        }
        let labels = lines.next().unwrap();
        let container = labels
            .split_once("container:[")
            .and_then(|(_, rest)| rest.split_once(']'))
            .unwrap_or_else(|| panic!("no container label: {labels}"))
            .0;
        let t: &mut (u64, u64) = totals.entry(container.to_string()).or_default();
        t.0 += v[0];
        t.1 += v[1];
    }
    totals
}

fn report_totals(file: &Path) -> BTreeMap<String, (u64, u64)> {
    nswatch(&[
        "report",
        "--by",
        "container",
        "--format",
        "ndjson",
        file.to_str().unwrap(),
    ])
    .lines()
    .map(|l| serde_json::from_str::<Value>(l).unwrap())
    .map(|r| {
        (
            r["container"].as_str().unwrap().to_string(),
            (
                r["samples"].as_u64().unwrap(),
                r["period"].as_u64().unwrap(),
            ),
        )
    })
    .collect()
}

#[test]
fn go_tool_pprof_reads_the_profile_and_its_totals_per_container_are_reports() {
    let file = fixture("samples.data");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("samples.pb.gz");
    let out_s = out.to_str().unwrap();
    nswatch(&[
        "report",
        "--by",
        "container",
        "--format",
        "pprof",
        "-o",
        out_s,
        file.to_str().unwrap(),
    ]);
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(&bytes[..2], b"\x1f\x8b", "gzip magic");
    let expected = report_totals(&file);
    assert!(expected.len() >= 2, "{expected:?}");
    let Some(raw) = go_pprof(&["-raw", out_s]) else {
        return;
    };
    assert!(raw.contains("samples/count cpu/nanoseconds"), "{raw}");
    assert_eq!(raw_totals(&raw), expected, "{raw}");
    // Every sample names its container's kind next to it, and `-top`'s total is the file's.
    assert!(raw.contains("container_kind:[sandbox]"), "{raw}");
    let all: u64 = expected.values().map(|t| t.0).sum();
    let top = go_pprof(&["-top", "-sample_index=samples", out_s]).unwrap();
    assert!(top.contains(&format!("of {all} total")), "{top}");
    // The functions are the folded stacks' frames.
    let folded = nswatch(&[
        "report",
        "--by",
        "container",
        "--folded",
        file.to_str().unwrap(),
    ]);
    let leaves: Vec<&str> = folded
        .lines()
        .map(|l| l.rsplit_once(' ').unwrap().0.rsplit(';').next().unwrap())
        .collect();
    for leaf in leaves {
        assert!(top.contains(leaf), "{leaf} not in\n{top}");
    }
    // Per container, as `-tagfocus` selects it.
    for (label, (n, _)) in &expected {
        // Every node shown (none dropped as small), so that they account for the total.
        let one = go_pprof(&[
            "-top",
            "-sample_index=samples",
            "-nodefraction=0",
            &format!("-tagfocus=container={label}"),
            out_s,
        ])
        .unwrap();
        assert!(
            one.contains(&format!("accounting for {n}, ")),
            "{label}: {one}"
        );
    }
}

#[test]
fn pprof_needs_a_file_and_by_container() {
    let file = fixture("samples.data");
    for args in [
        vec!["report", "--by", "container", "--format", "pprof"],
        vec!["report", "--format", "pprof", "-o", "/dev/null"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_nswatch"))
            .args(&args)
            .arg(&file)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("-o") || err.contains("--by container"),
            "{args:?}: {err}"
        );
    }
}
