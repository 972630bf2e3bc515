//! `nswatch report` names groups: from an NDJSON recording's announcements (container_start
//! and container_rename lines), and from a perf.data file's CGROUP records and samples'
//! cgroup ids (`perf record --all-cgroups`).

mod common;
use common::{fixture, nswatch};

use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

const HEX: &str = "abababababababababababababababababababababababababababababababab";

/// A fixture's stream as `nswatch record` writes it for a named container.
fn named_recording(file: &str) -> String {
    let mut out = String::new();
    for line in nswatch(&[
        "report",
        "--format",
        "ndjson",
        fixture(file).to_str().unwrap(),
    ])
    .lines()
    {
        let mut v: Value = serde_json::from_str(line).unwrap();
        if v["type"] == "container_start" && v["kind"] == "container" {
            v["name"] = "web".into();
            v["runtime"] = "docker".into();
            v["runtime_id"] = HEX.into();
            v["image"] = "busybox:latest".into();
            v["cgroup"] = format!("/docker/{HEX}").into();
        }
        out.push_str(&format!("{v}\n"));
    }
    out
}

/// The labels of the "groups:" section of a text report.
fn group_lines(text: &str) -> Vec<&str> {
    let at = text.find("\ngroups: ").expect("a groups section");
    text[at..]
        .lines()
        .skip(2)
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .collect()
}

#[test]
fn report_of_ndjson_names_the_groups_the_recording_announced() {
    let nd = named_recording("unshare-mnt-pid.data");
    let dir = tempfile::tempdir().unwrap();
    // Told by content, whatever the name.
    let file = dir.path().join("recording.data");
    std::fs::write(&file, &nd).unwrap();
    let text = nswatch(&["report", file.to_str().unwrap()]);
    let announced: BTreeSet<String> = nd
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        // Kernel threads' groups (kdevtmpfs) are counted with the host, listed with --all.
        .filter(|v| v["type"] == "container_start" && v["kernel_threads"] != true)
        .map(|v| v["container"].as_str().unwrap().to_string())
        .collect();
    let lines = group_lines(&text);
    let shown: BTreeSet<String> = lines
        .iter()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(shown, announced, "{text}");
    let web = lines
        .iter()
        .find(|l| l.contains(" container "))
        .expect("the container's line");
    assert!(web.contains(" web (docker) "), "{text}");
    assert!(
        text.contains(&format!(
            "image busybox:latest  cgroup /docker/{HEX}  by unshare"
        )),
        "{text}"
    );
    // The story of the sets is told as from the perf.data file.
    let from_perf = nswatch(&["report", fixture("unshare-mnt-pid.data").to_str().unwrap()]);
    let story = |t: &str| -> String {
        let from = t.find("\nnamespace sets").unwrap();
        let to = t.find("\ngroups: ").unwrap();
        t[from..to].to_string()
    };
    assert_eq!(story(&text), story(&from_perf));

    // The event stream keeps the names, and the groups start once each.
    let stream = nswatch(&["report", "--format", "ndjson", file.to_str().unwrap()]);
    let starts: Vec<Value> = stream
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "container_start")
        .collect();
    // kdevtmpfs's group too, marked again.
    assert_eq!(starts.len(), announced.len() + 1, "{stream}");
    assert_eq!(
        starts
            .iter()
            .filter(|v| v["kernel_threads"] == true)
            .count(),
        1
    );
    let ct = starts.iter().find(|v| v["kind"] == "container").unwrap();
    assert_eq!(
        (ct["name"].as_str(), ct["runtime"].as_str()),
        (Some("web"), Some("docker"))
    );
    assert_eq!(ct["image"], "busybox:latest");

    // From standard input too.
    let out = Command::new(env!("CARGO_BIN_EXE_nswatch"))
        .args(["report", "-"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(" web (docker) "));
}

#[test]
fn report_of_an_all_cgroups_capture_names_the_group_from_its_samples_cgroup() {
    // fixtures/cgroup-container.cmd: a process moved into /docker/<hex> (v2 and
    // name=systemd), then a new mount and pid namespace running a busy loop, recorded
    // with `perf record --namespaces --all-cgroups -a -F 997 -e cpu-clock`.
    let hex = "5eed".repeat(16);
    let text = nswatch(&["report", fixture("cgroup-container.data").to_str().unwrap()]);
    let lines = group_lines(&text);
    let named: Vec<&&str> = lines.iter().filter(|l| l.contains("(docker)")).collect();
    assert_eq!(named.len(), 1, "{text}");
    let line = named[0];
    assert!(line.trim_start().starts_with("ct-"), "{line}");
    assert!(line.contains(&format!(" {hex} (docker) ")), "{line}");
    let at = text.find(*line).unwrap() + line.len();
    let next = text[at..].lines().nth(1).unwrap();
    assert_eq!(next.trim(), format!("cgroup /docker/{hex}  by unshare"));
    // Without the samples' cgroup ids nothing names it: the same workload's other fixture.
    let plain = nswatch(&["report", fixture("unshare-mnt-pid.data").to_str().unwrap()]);
    assert!(!plain.contains("(docker)"), "{plain}");
}

/// `report --by container` names a group from its samples' cgroup ids as the text report
/// does: the table's row and the JSON's fields.
#[test]
fn by_container_names_groups_from_samples_cgroups() {
    let hex = "5eed".repeat(16);
    let file = fixture("cgroup-container.data");
    let table = nswatch(&["report", "--by", "container", file.to_str().unwrap()]);
    let row = table
        .lines()
        .find(|l| l.contains(" ct-"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains(&format!(" {hex} (docker) ")), "{row}");
    let doc: Value = serde_json::from_str(&nswatch(&[
        "report",
        "--by",
        "container",
        "--format",
        "json",
        file.to_str().unwrap(),
    ]))
    .unwrap();
    let ct = doc["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["container"].as_str().unwrap().starts_with("ct-"))
        .unwrap_or_else(|| panic!("{doc}"));
    assert_eq!(ct["runtime"], "docker", "{ct}");
    assert_eq!(ct["runtime_id"], hex.as_str(), "{ct}");
    assert_eq!(ct["name"], hex.as_str(), "{ct}");
}
