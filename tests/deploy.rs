//! deploy/: the Kubernetes manifest as kubectl reads it (offline) and against the API's
//! types, the systemd unit as `systemd-analyze` verifies and scores it, both granting the
//! same capabilities, and nswatch doing its whole work with those capabilities alone.

mod common;
use common::runtimes::{resolve, runtime_ok, Container, Runtime};
use common::Recorder;

use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(file)
}

/// Whether the tools are here; skips (printing why) or, under NSWATCH_REQUIRE_LIVE=1,
/// fails where one is missing (scripts/bootstrap installs them with the runtimes).
fn tools_ok(what: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| match *t {
            "python3-kubernetes" => !Command::new("/usr/bin/python3")
                .args(["-c", "import kubernetes"])
                .output()
                .is_ok_and(|o| o.status.success()),
            t => !resolve(t).is_absolute(),
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        !common::require_live(),
        "{what}: {missing:?} missing and NSWATCH_REQUIRE_LIVE=1"
    );
    eprintln!("SKIP {what}: {missing:?} not installed");
    false
}

/// The manifest's objects as kubectl reads them, without a cluster (`--local`): the JSON
/// text, one object after another.
fn kubectl_objects() -> String {
    let out = Command::new(resolve("kubectl"))
        .args(["label", "--local", "--dry-run=client", "-o", "json", "-f"])
        .arg(deploy("kubernetes.yaml"))
        .arg("nswatch.io/checked=yes")
        // No cluster is asked: a kubeconfig that names none proves it.
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn objects(json: &str) -> Vec<Value> {
    serde_json::Deserializer::from_str(json)
        .into_iter::<Value>()
        .map(Result::unwrap)
        .collect()
}

/// The capabilities the DaemonSet adds, lower case without `CAP_`.
fn manifest_caps(objs: &[Value]) -> BTreeSet<String> {
    let ds = objs
        .iter()
        .find(|o| o["kind"] == "DaemonSet")
        .expect("a DaemonSet");
    let caps = &ds["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"];
    assert_eq!(caps["drop"], serde_json::json!(["ALL"]), "{caps}");
    caps["add"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_ascii_lowercase())
        .collect()
}

fn unit_text() -> String {
    std::fs::read_to_string(deploy("nswatch.service")).unwrap()
}

/// The values of `key=` in the unit, split at white space.
fn unit_values(key: &str) -> Vec<String> {
    unit_text()
        .lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .flat_map(|v| v.split_whitespace().map(str::to_string))
        .collect()
}

fn unit_caps(key: &str) -> BTreeSet<String> {
    unit_values(key)
        .iter()
        .map(|c| {
            c.strip_prefix("CAP_")
                .unwrap_or_else(|| panic!("{key}: {c}"))
                .to_ascii_lowercase()
        })
        .collect()
}

#[test]
fn manifest_is_read_by_kubectl_and_fits_the_api_types() {
    let what = "manifest_is_read_by_kubectl_and_fits_the_api_types";
    if !tools_ok(what, &["kubectl", "python3-kubernetes"]) {
        return;
    }
    let json = kubectl_objects();
    let objs = objects(&json);
    let kinds: Vec<&str> = objs.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Namespace", "ServiceAccount", "DaemonSet"]);
    let ds = &objs[2];
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"], true, "{pod}");
    let ctr = &pod["containers"][0];
    assert_eq!(ctr["securityContext"]["privileged"], false, "{ctr}");
    assert_eq!(ctr["securityContext"]["readOnlyRootFilesystem"], true);
    // Every host path is mounted read-only.
    for m in ctr["volumeMounts"].as_array().unwrap() {
        assert_eq!(m["readOnly"], true, "{m}");
    }
    // The metrics listen where the pod's port and the scrape annotation say.
    let args: Vec<&str> = ctr["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let at = args.iter().position(|a| *a == "--metrics").unwrap();
    let port = args[at + 1].rsplit(':').next().unwrap();
    assert_eq!(ctr["ports"][0]["containerPort"].to_string(), port);
    assert_eq!(
        ds["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"],
        port
    );

    // Against the API's types (the official client's models, generated from its OpenAPI
    // spec): a misspelt field or a value of the wrong type is a fault.
    let mut py = Command::new("/usr/bin/python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/deploy/validate_k8s.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    py.stdin.take().unwrap().write_all(json.as_bytes()).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("3 objects, 0 faults"),
        "{out:?}"
    );

    // The checker finds faults: the same manifest misspelt.
    let bad = std::fs::read_to_string(deploy("kubernetes.yaml"))
        .unwrap()
        .replacen("readOnlyRootFilesystem", "readOnlyRootFS", 1);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.yaml"), bad).unwrap();
    let json = Command::new(resolve("kubectl"))
        .args(["label", "--local", "--dry-run=client", "-o", "json", "-f"])
        .arg(dir.path().join("bad.yaml"))
        .arg("nswatch.io/checked=yes")
        .env("KUBECONFIG", "/nonexistent")
        .output()
        .unwrap()
        .stdout;
    let mut py = Command::new("/usr/bin/python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/deploy/validate_k8s.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    py.stdin.take().unwrap().write_all(&json).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("readOnlyRootFS: no such field"),
        "{out:?}"
    );
}

#[test]
fn unit_verifies_and_grants_what_the_manifest_does() {
    let what = "unit_verifies_and_grants_what_the_manifest_does";
    if !tools_ok(what, &["systemd-analyze", "kubectl"]) {
        return;
    }
    let bounding = unit_caps("CapabilityBoundingSet");
    assert_eq!(bounding, unit_caps("AmbientCapabilities"));
    assert_eq!(bounding, manifest_caps(&objects(&kubectl_objects())));

    // verify checks that ExecStart's program exists: the binary under test stands in.
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("nswatch.service");
    std::fs::write(
        &unit,
        unit_text().replace("/usr/local/bin/nswatch", env!("CARGO_BIN_EXE_nswatch")),
    )
    .unwrap();
    let out = Command::new(resolve("systemd-analyze"))
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Its exposure score (0 = fully confined, 10 = unconfined): "OK" is below 5.
    let out = Command::new(resolve("systemd-analyze"))
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| {
            l.split_once("Overall exposure level for nswatch.service: ")?
                .1
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no score in:\n{text}"));
    assert!(score < 5.0, "exposure {score}:\n{text}");
}

fn get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text)
}

/// nswatch run as the unit runs it, with the unit's capabilities alone (root's uid,
/// SECBIT_NOROOT: root's other capabilities are not gained at exec): the eBPF probe
/// loads, and a runc container and an `ip netns` sandbox are found by their names.
#[test]
fn runs_with_the_deployed_capabilities_alone() {
    let what = "runs_with_the_deployed_capabilities_alone";
    if !common::live_ok(what)
        || !runtime_ok(what, Runtime::Runc)
        || !runtime_ok(what, Runtime::Netns)
        || !tools_ok(what, &["setpriv"])
    {
        return;
    }
    let caps: Vec<String> = unit_caps("CapabilityBoundingSet")
        .iter()
        .map(|c| format!("+{c}"))
        .collect();
    let set = format!("-all,{}", caps.join(","));
    // The unit's command, with a free port and a file of the test's.
    let exec = unit_values("ExecStart");
    assert_eq!(exec[0], "/usr/local/bin/nswatch", "{exec:?}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.ndjson");
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let args: Vec<String> = exec[1..]
        .iter()
        .map(|a| match a.as_str() {
            "127.0.0.1:9464" => addr.to_string(),
            "/var/log/nswatch/events.ndjson" => file.display().to_string(),
            a => a.to_string(),
        })
        .collect();
    assert!(args.contains(&addr.to_string()), "{args:?}");
    let mut agent = Recorder(
        Command::new(resolve("setpriv"))
            .args(["--securebits", "+noroot,+noroot_locked"])
            .args(["--bounding-set", &set, "--inh-caps", &set])
            .args(["--ambient-caps", &set, "--"])
            .arg(env!("CARGO_BIN_EXE_nswatch"))
            .args(&args)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let t0 = Instant::now();
    while !get(addr, "/metrics").is_some_and(|t| t.contains("group=\"host\"")) {
        assert!(t0.elapsed() < Duration::from_secs(30), "no metrics");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", agent.id())).unwrap();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap()
        .trim()
        .to_string();
    // PERFMON 38, BPF 39, SYS_PTRACE 19, DAC_READ_SEARCH 2, IPC_LOCK 14: none other.
    assert_eq!(
        u64::from_str_radix(&eff, 16).unwrap(),
        (1 << 38) | (1 << 39) | (1 << 19) | (1 << 2) | (1 << 14),
        "{status}"
    );

    let ct = Container::start(Runtime::Runc, "caps");
    let sb = Container::start(Runtime::Netns, "caps");
    let want = [
        format!(
            r#"kind="container",name="{0}",runtime="runc",runtime_id="{0}""#,
            ct.id()
        ),
        format!(
            r#"kind="sandbox",name="{0}",runtime="ip-netns",runtime_id="{0}""#,
            sb.id()
        ),
    ];
    let t0 = Instant::now();
    let mut text = String::new();
    while t0.elapsed() < Duration::from_secs(15) {
        text = get(addr, "/metrics").unwrap_or_default();
        if want.iter().all(|w| text.contains(w)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for w in &want {
        assert!(text.contains(w), "{w} not in:\n{text}");
    }
    drop((ct, sb));
    let (status, err) = common::interrupt(&mut agent);
    assert!(status.success(), "{err}");
    assert!(err.contains("eBPF: on"), "{err}");
    assert!(!err.contains("unavailable"), "{err}");
    let events = std::fs::read_to_string(&file).unwrap();
    assert!(
        events.contains("\"type\":\"container_start\""),
        "no container_start in {}",
        file.display()
    );
}
