//! `nswatch record --metrics`: a real Prometheus (Debian's package) scrapes it while a runc
//! container and an `ip netns` sandbox do known things, and its HTTP API answers with their
//! series, named and counted; ended groups leave the output; bad addresses fail at once.

mod common;
use common::runtimes::{command, resolve, runtime_ok, Container, Runtime};
use common::Recorder;

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` from `addr`: (status, body), or None when nothing answers.
fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Some((status, body.to_string()))
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A Prometheus server on loopback scraping one target every second, stopped on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: nswatch\n    static_configs:\n      \
                 - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(resolve("prometheus"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let p = Prometheus {
            child,
            addr,
            _dir: dir,
        };
        p.wait_for("Prometheus ready", || {
            get(addr, "/-/ready").is_some_and(|(s, _)| s == 200)
        });
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("prometheus.log")).unwrap_or_default()
    }

    fn wait_for(&self, what: &str, mut ok: impl FnMut() -> bool) {
        let t0 = Instant::now();
        while !ok() {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "{what}: not within 60 s; Prometheus's log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The series an instant query returns: (labels, value).
    fn query(&self, q: &str) -> Vec<(Value, f64)> {
        let (status, body) = get(
            self.addr,
            &format!("/api/v1/query?query={}", percent_encode(q)),
        )
        .unwrap_or_else(|| panic!("query {q}: Prometheus does not answer"));
        assert_eq!(status, 200, "query {q}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let value = r["value"][1].as_str().unwrap().parse().unwrap();
                (r["metric"].clone(), value)
            })
            .collect()
    }

    /// The value of the one series `selector` selects (0 when none), as last scraped: a
    /// scrape that timed out on a loaded machine marks every series stale until the next,
    /// which an instant query of the selector would take for absent.
    fn value(&self, selector: &str) -> f64 {
        self.sum_of(&format!("last_over_time({selector}[1m])"))
    }

    /// The value of a query that gives one series (0 when none).
    fn sum_of(&self, q: &str) -> f64 {
        let r = self.query(q);
        assert!(r.len() <= 1, "{q}: {r:?}");
        r.first().map_or(0.0, |(_, v)| *v)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `nswatch record --count-only --metrics ADDR [extra…]` and waits until it serves.
fn start_agent(extra: &[&str]) -> (Recorder, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Recorder(
        Command::new(env!("CARGO_BIN_EXE_nswatch"))
            .args(["record", "--count-only", "--metrics", &addr.to_string()])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut child = child;
    let t0 = Instant::now();
    // Served once the start-up scan is published: the host has tasks. Loading the probe
    // and scanning /proc take a while on a loaded machine.
    while !get(addr, "/metrics")
        .is_some_and(|(_, b)| b.contains("nswatch_group_tasks{group=\"host\""))
    {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                std::io::Read::read_to_string(&mut e, &mut err).unwrap();
            }
            panic!("record --metrics {addr} ended ({status}) before serving: {err}");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "no metrics at {addr} after 90 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, addr)
}

fn prometheus_ok(what: &str) -> bool {
    if resolve("prometheus").is_absolute() {
        return true;
    }
    assert!(
        !common::require_live(),
        "{what}: prometheus is not installed and NSWATCH_REQUIRE_LIVE=1"
    );
    eprintln!("SKIP {what}: prometheus is not installed");
    false
}

/// `ip netns exec NAME ARGS…`, its status ignored (a call meant to fail makes it fail).
fn in_netns(name: &str, args: &[&str]) {
    let out = command("ip")
        .args(["netns", "exec", name])
        .args(args)
        .output()
        .unwrap();
    let _ = out.status;
}

#[test]
fn prometheus_scrapes_groups_by_name_with_their_counts() {
    let what = "prometheus_scrapes_groups_by_name_with_their_counts";
    if !common::live_ok(what)
        || !runtime_ok(what, Runtime::Runc)
        || !runtime_ok(what, Runtime::Netns)
        || !prometheus_ok(what)
    {
        return;
    }
    let (mut agent, addr) = start_agent(&[]);
    let prom = Prometheus::start(addr);
    prom.wait_for("nswatch scraped", || {
        prom.value(r#"up{job="nswatch"}"#) == 1.0
    });

    let mut ct = Container::start(Runtime::Runc, "prom");
    let mut sb = Container::start(Runtime::Netns, "prom");
    // (runc's own init passes through a sandbox of the container's network namespace
    // alone, named after the container too: kind tells them apart.)
    let ct_sel = format!(
        r#"kind="container",runtime="runc",runtime_id="{}""#,
        ct.id()
    );
    let sb_sel = format!(
        r#"kind="sandbox",runtime="ip-netns",runtime_id="{}""#,
        sb.id()
    );
    // Both are there with their names, once scraped.
    prom.wait_for("the container's and the sandbox's series", || {
        prom.value(&format!("nswatch_group_tasks{{{ct_sel}}}")) >= 1.0
            && prom.value(&format!("nswatch_group_tasks{{{sb_sel}}}")) >= 1.0
    });
    let series = prom.query(&format!("nswatch_group_tasks{{{ct_sel}}}"));
    let labels = &series[0].0;
    assert_eq!(labels["kind"], "container", "{labels}");
    assert_eq!(labels["name"], ct.id(), "{labels}");
    assert!(
        labels["group"].as_str().unwrap().starts_with("ct-"),
        "{labels}"
    );
    let series = prom.query(&format!("nswatch_group_tasks{{{sb_sel}}}"));
    let labels = &series[0].0;
    assert_eq!(labels["kind"], "sandbox", "{labels}");
    assert_eq!(labels["name"], sb.id(), "{labels}");
    assert!(
        prom.sum_of(
            r#"sum(last_over_time(nswatch_container_starts_total{kind="container",runtime="runc"}[1m]))"#
        )
            >= 1.0
    );
    assert!(prom.value("process_resident_memory_bytes") > 0.0);
    assert!(prom.value("process_cpu_seconds_total") > 0.0);

    // What the test does: N forks and execs of /bin/true in the container; K entries into
    // the sandbox (`ip netns exec`: setns, then unshare of the mount namespace) and M more
    // that run a setns meant to fail there (a file that is no namespace: EINVAL).
    let ct_q = |m: &str| format!("{m}{{{ct_sel}}}");
    let sb_calls = |s: &str, r: &str| {
        format!(r#"nswatch_group_namespace_syscalls_total{{{sb_sel},syscall="{s}",result="{r}"}}"#)
    };
    let sb_errno = format!(
        r#"nswatch_group_namespace_syscall_errors_total{{{sb_sel},syscall="setns",errno="EINVAL"}}"#
    );
    let queries = [
        ct_q("nswatch_group_forks_total"),
        ct_q("nswatch_group_execs_total"),
        ct_q("nswatch_group_exits_total"),
        sb_calls("setns", "ok"),
        sb_calls("unshare", "ok"),
        sb_calls("setns", "failed"),
        sb_errno.clone(),
    ];
    let before: Vec<f64> = queries.iter().map(|q| prom.value(q)).collect();
    const N: f64 = 40.0;
    const K: usize = 5;
    const M: usize = 3;
    ct.fork_loop(N as u32);
    for _ in 0..K {
        in_netns(sb.id(), &["true"]);
    }
    let ns_calls = common::build_c("tests/progs/ns_calls.c");
    for _ in 0..M {
        in_netns(sb.id(), &[ns_calls.to_str().unwrap(), "setns_regular"]);
    }
    let (k, m) = (K as f64, M as f64);
    let want = |d: &[f64]| {
        // The loop's N children, and what `runc exec` adds around them (its init's
        // clones and exec, the shell): a few.
        (N..=N + 6.0).contains(&d[0])
            && (N..=N + 6.0).contains(&d[1])
            && (N..=N + 6.0).contains(&d[2])
            && d[3] == k + m
            && d[4] == k + m
            && d[5] == m
            && d[6] == m
    };
    let delta = || -> Vec<f64> {
        queries
            .iter()
            .zip(&before)
            .map(|(q, b)| prom.value(q) - b)
            .collect()
    };
    let t0 = Instant::now();
    let mut d = delta();
    while !want(&d) && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(500));
        d = delta();
    }
    assert!(
        want(&d),
        "increases seen by Prometheus: {:?}",
        queries.iter().zip(&d).collect::<Vec<_>>()
    );

    // The container stops: its exit is counted, and its last counts stay (retention).
    ct.stop();
    sb.stop();
    prom.wait_for("the container's exit", || {
        prom.value(&format!("nswatch_group_tasks{{{ct_sel}}}")) == 0.0
            && prom
                .sum_of(r#"sum(last_over_time(nswatch_container_exits_total{runtime="runc"}[1m]))"#)
                >= 1.0
    });
    assert!(prom.value(&ct_q("nswatch_group_forks_total")) >= before[0] + N);
    let (status, err) = common::interrupt(&mut agent);
    assert!(status.success(), "{err}");
    assert!(err.contains("metrics at http://"), "{err}");
}

#[test]
fn ended_groups_leave_after_the_retention() {
    let what = "ended_groups_leave_after_the_retention";
    if !common::live_ok(what) {
        return;
    }
    let (mut agent, addr) = start_agent(&["--metrics-retention", "2s"]);
    let scrape = || get(addr, "/metrics").unwrap().1;
    let value = |text: &str, series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
    };
    let base = value(&scrape(), "nswatch_metrics_groups");
    // 300 short-lived sandboxes, each its own network namespace.
    const N: usize = 300;
    let out = Command::new("sh")
        .args([
            "-c",
            &format!("i=0; while [ $i -lt {N} ]; do unshare -n -u true; i=$((i+1)); done"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // Seen (the ended ones within the retention, or already dropped), then gone.
    let t0 = Instant::now();
    let text = loop {
        let text = scrape();
        let seen = value(&text, "nswatch_metrics_groups")
            + value(&text, "nswatch_metrics_groups_dropped_total");
        if seen >= base + N as f64 || t0.elapsed() > Duration::from_secs(10) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        value(
            &text,
            r#"nswatch_container_starts_total{kind="sandbox",runtime="unshare"}"#
        ) >= N as f64,
        "{text}"
    );
    let t0 = Instant::now();
    let text = loop {
        let text = scrape();
        if value(&text, "nswatch_metrics_groups") <= base || t0.elapsed() > Duration::from_secs(10)
        {
            break text;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(value(&text, "nswatch_metrics_groups") <= base, "{text}");
    assert!(
        value(&text, "nswatch_metrics_groups_dropped_total") >= N as f64,
        "{text}"
    );
    let (status, err) = common::interrupt(&mut agent);
    assert!(status.success(), "{err}");
}

/// `record --metrics` with an address in use or not an address: a clear error, and
/// nothing started (no summary: the session never opened).
#[test]
fn bad_metrics_addresses_fail_before_anything_starts() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_nswatch"))
            .args(["record", "--count-only", "--duration", "5"])
            .args(args)
            .output()
            .unwrap();
        (out.status, String::from_utf8_lossy(&out.stderr).to_string())
    };
    let t0 = Instant::now();
    let (status, err) = run(&["--metrics", &port.to_string()]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("--metrics 127.0.0.1:{port}: cannot listen"))
            && err.contains("in use"),
        "{err}"
    );
    assert!(!err.contains("records in"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(4), "it ran");
    for (bad, says) in [
        (":9464", "0.0.0.0:9464"),
        ("nowhere:9464", "not a port or an IP address"),
        ("70000", "not a port"),
    ] {
        let (status, err) = run(&["--metrics", bad]);
        assert_eq!(status.code(), Some(2), "{bad}: {err}");
        assert!(err.contains(says), "{bad}: {err}");
    }
    let (status, err) = run(&["--metrics-retention", "1m"]);
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("--metrics <ADDR>"), "{err}");
    drop(busy);
}
