//! Container attribution against real runtimes (issue 5's proof): for runc, crun, LXC,
//! systemd-nspawn (with and without a machine scope), bubblewrap, firejail, `ip netns`,
//! docker, podman (rootful, pods, rootless) and containerd's `ctr`, started on the busybox
//! rootfs by tests/common/runtimes.rs, `nswatch ps` and a live `nswatch record` find the group
//! with the right kind, runtime and the runtime's own names (id, name, image, pod,
//! namespace), all its tasks and nothing else; a process started later by the
//! runtime's exec joins it; short-lived tasks of a fork/exec loop inside are all attributed to
//! it; it ends when the container stops. Two runc containers sharing a network namespace are
//! one pod. Needs root: skips with the reason otherwise, fails under NSWATCH_REQUIRE_LIVE=1.

mod common;
use common::recording::{group_of, ps, Recording};
use common::runtimes::{expected_naming, runtime_ok, Container, Runtime};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

fn tids_of(group: &Value) -> BTreeSet<u32> {
    group["processes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["threads"].as_array().unwrap().iter())
        .map(|t| t.as_u64().unwrap() as u32)
        .collect()
}

/// What nswatch must say about container `c`: [`expected_naming`].
fn expect_naming(c: &Container, g: &Value) {
    for (field, want) in expected_naming(c) {
        assert_eq!(g[field], want, "{field}: {g}");
    }
}

fn attribution(rt: Runtime) {
    let what = format!("attribution_{}", rt.label());
    if !runtime_ok(&what, rt) {
        return;
    }
    let rec = Recording::start();
    let mut c = Container::start(rt, "a");
    let payload = c.payload_pid();

    // ps: the group, its naming, all its tasks and nothing else.
    let snap = ps();
    let g = group_of(&snap, payload).unwrap_or_else(|| panic!("{what}: no group has {payload}"));
    expect_naming(&c, &g);
    let label = g["id"].as_str().unwrap().to_string();
    let want: BTreeSet<u32> = c.tasks().into_iter().collect();
    let got = tids_of(&g);
    // ip netns exec: the payload's tasks are the group's; other tests' namespaces are not.
    assert_eq!(got, want, "{what}: tasks of {label}");
    let own: BTreeSet<&str> = g["owns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for k in rt.exec_shares() {
        assert!(own.contains(k), "{what}: {label} owns {own:?}, not {k}");
    }

    // A process started later by the runtime's own exec joins the group, as "joined".
    let joined = c.exec(&["sleep", "60"]);
    let snap = ps();
    let g2 = group_of(&snap, joined).unwrap_or_else(|| panic!("{what}: exec'd {joined} not found"));
    assert_eq!(
        g2["id"],
        label.as_str(),
        "{what}: exec'd process in another group"
    );
    let p = g2["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == joined)
        .unwrap()
        .clone();
    if rt.has_pid_ns() {
        assert_ne!(
            p["nspid"], joined,
            "{what}: nspid of {joined} is its host pid"
        );
    }
    assert_eq!(
        group_of(&snap, payload).unwrap()["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pid"] == payload)
            .unwrap()["origin"],
        "born"
    );
    if rt != Runtime::Netns {
        assert_eq!(p["origin"], "joined", "{what}: {p}");
    }

    // Short-lived tasks inside: every one attributed to the group, none to the host.
    c.fork_loop(100);
    c.stop();
    let (evs, err) = rec.stop();

    // The live label is the one `ps` gave: one namespace, one group, whatever the
    // recording saw before (`ip netns add` puts its own process in the new namespace
    // before `ip netns exec` enters it again: the same group, started twice).
    let live_label = evs
        .iter()
        .rev()
        .find(|e| e["type"] == "namespaces" && e["pid"] == payload)
        .and_then(|e| e["container"].as_str())
        .unwrap_or_else(|| panic!("{what}: no namespaces event of the payload {payload}"));
    assert_eq!(live_label, label, "{what}: record and ps disagree");
    // A label names a namespace by its number, which the kernel gives again once it is
    // free: the recording may hold an earlier group of this label (another test's
    // container). This one's start is the last of the label before the payload's events.
    let first = evs
        .iter()
        .position(|e| e["pid"] == payload && e["container"] == label.as_str())
        .unwrap_or_else(|| panic!("{what}: no event of the payload {payload} in {label}"));
    let start = evs[..=first]
        .iter()
        .rev()
        .find(|e| e["type"] == "container_start" && e["container"] == label.as_str())
        .unwrap_or_else(|| panic!("{what}: no container_start of {label}\n{err}"));
    assert_eq!(start["kind"], g["kind"]);
    assert_eq!(start["runtime"], g["runtime"], "{start}");
    assert_eq!(start["runtime_id"], g["runtime_id"], "{start}");
    assert!(
        evs[first..]
            .iter()
            .any(|e| e["type"] == "container_exit" && e["container"] == label.as_str()),
        "{what}: no container_exit of {label}"
    );
    // The exec'd process's events carry the container.
    assert!(
        evs.iter()
            .any(|e| e["pid"] == joined && e["container"] == label.as_str()),
        "{what}: no event of {joined} in {label}"
    );
    // The fork loop's children: `true` execs, each one's events all in the container.
    // A tid comes back once the kernel gives it again (pid_max is 32,768 on a small
    // machine, and other tests fork meanwhile): a run's events are those of its tid from
    // the FORK before its exec to the EXIT after it, the task's whole life.
    let runs: Vec<(u64, usize)> = evs
        .iter()
        .enumerate()
        .filter(|(_, e)| e["type"] == "comm" && e["comm"] == "true" && e["exec"] == true)
        .filter(|(_, e)| e["container"] == label.as_str())
        .map(|(i, e)| (e["tid"].as_u64().unwrap(), i))
        .collect();
    assert!(
        runs.len() >= 100,
        "{what}: {} true runs in {label}",
        runs.len()
    );
    for &(tid, exec) in &runs {
        let of_tid = |e: &&Value| e["tid"].as_u64() == Some(tid);
        let born = evs[..exec]
            .iter()
            .rposition(|e| of_tid(&e) && e["type"] == "fork")
            .unwrap_or(0);
        let ended = evs[exec..]
            .iter()
            .position(|e| of_tid(&e) && e["type"] == "exit")
            .map_or(evs.len(), |i| exec + i + 1);
        let life = &evs[born..ended];
        for e in life.iter().filter(|e| {
            of_tid(e) && !e["synthesized"].as_bool().unwrap_or(false) && e["type"] != "fork"
        }) {
            if e["container"] != label.as_str() {
                let told: Vec<String> = life.iter().filter(of_tid).map(|x| x.to_string()).collect();
                // What else could tell why: the group's starts and ends over the whole
                // record, and the parent's last events up to the task's end.
                let ppid = life
                    .iter()
                    .find(|x| of_tid(x) && x["type"] == "fork")
                    .map(|x| x["ptid"].clone());
                let groups: Vec<String> = evs
                    .iter()
                    .filter(|x| {
                        x["type"]
                            .as_str()
                            .is_some_and(|t| t.starts_with("container_"))
                    })
                    .filter(|x| x["container"] == label.as_str() || x["tid"] == tid)
                    .map(|x| x.to_string())
                    .collect();
                let mut parent: Vec<String> = evs[..ended]
                    .iter()
                    .rev()
                    .filter(|x| ppid.as_ref().is_some_and(|p| x["tid"] == *p))
                    .take(12)
                    .map(|x| x.to_string())
                    .collect();
                parent.reverse();
                panic!(
                    "{what}: {e} is not in {label}; the task's events:\n{}\nthe group's starts \
                     and ends:\n{}\nthe parent's last events:\n{}\nrecord said:\n{err}",
                    told.join("\n"),
                    groups.join("\n"),
                    parent.join("\n")
                );
            }
        }
    }
}

#[test]
fn attribution_runc() {
    attribution(Runtime::Runc);
}

#[test]
fn attribution_lxc() {
    attribution(Runtime::Lxc);
}

#[test]
fn attribution_nspawn() {
    attribution(Runtime::Nspawn);
}

#[test]
fn attribution_bwrap() {
    attribution(Runtime::Bwrap);
}

#[test]
fn attribution_firejail() {
    attribution(Runtime::Firejail);
}

#[test]
fn attribution_ip_netns() {
    attribution(Runtime::Netns);
}

#[test]
fn attribution_nspawn_without_systemd() {
    attribution(Runtime::NspawnBare);
}

#[test]
fn attribution_docker() {
    attribution(Runtime::Docker);
}

#[test]
fn attribution_podman() {
    attribution(Runtime::Podman);
}

#[test]
fn attribution_podman_pod() {
    attribution(Runtime::PodmanPod);
}

#[test]
fn attribution_podman_rootless() {
    attribution(Runtime::PodmanRootless);
}

#[test]
fn attribution_ctr() {
    attribution(Runtime::Ctr);
}

#[test]
fn attribution_crun() {
    attribution(Runtime::Crun);
}

#[test]
fn two_runc_containers_sharing_net_are_one_pod() {
    if !runtime_ok("pod", Runtime::Runc) {
        return;
    }
    let a = Container::start(Runtime::Runc, "poda");
    let b = Container::start_runc_joining_net(&a, "podb");
    let snap = ps();
    let ga = group_of(&snap, a.payload_pid()).unwrap();
    let gb = group_of(&snap, b.payload_pid()).unwrap();
    assert_ne!(ga["id"], gb["id"], "two containers");
    assert_eq!(ga["pod"], gb["pod"], "{ga}\n{gb}");
    let pod = ga["pod"].as_str().expect("in a pod").to_string();
    let entry = snap["pods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == pod.as_str())
        .unwrap()
        .clone();
    let members: BTreeSet<&str> = entry["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        members,
        [ga["id"].as_str().unwrap(), gb["id"].as_str().unwrap()]
            .into_iter()
            .collect()
    );
    assert!(gb["shares_with_pod"]
        .as_array()
        .unwrap()
        .contains(&Value::from("net")));
    // The text tree shows the pod with both containers under it.
    let out = Command::new(env!("CARGO_BIN_EXE_nswatch"))
        .arg("ps")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let at = text.find(&format!("pod {pod}")).expect(&text);
    let after = &text[at..];
    assert!(after.contains(a.id()) && after.contains(b.id()), "{text}");
}

#[test]
fn a_container_started_inside_a_container_is_nested() {
    if !common::live_ok("nested") {
        return;
    }
    // An outer pid+mnt namespace whose init starts an inner one.
    let mut outer = Command::new("unshare")
        .args(["-m", "-p", "-f", "--mount-proc", "sh", "-c"])
        .arg("unshare -m -p -f --mount-proc sleep 60 & sleep 60")
        .spawn()
        .unwrap();
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = Command::new("pkill")
                .args(["-KILL", "-P", &self.0.id().to_string()])
                .status();
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let unshare = outer.id();
    let t0 = Instant::now();
    // unshare → sh (outer init) → { unshare → sleep (inner init), sleep }.
    let (outer_init, inner_init) = loop {
        let kids = |p: u32| -> Vec<u32> {
            std::fs::read_to_string(format!("/proc/{p}/task/{p}/children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|s| s.parse().ok())
                .collect()
        };
        let found = kids(unshare).first().copied().and_then(|sh| {
            let inner = kids(sh)
                .into_iter()
                .flat_map(|u| kids(u).into_iter())
                .next()?;
            Some((sh, inner))
        });
        if let Some(f) = found {
            break f;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "nested container did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let guard = Kill(std::mem::replace(
        &mut outer,
        Command::new("true").spawn().unwrap(),
    ));
    let _ = outer.wait();
    let snap = ps();
    let go = group_of(&snap, outer_init).unwrap();
    let gi = group_of(&snap, inner_init).unwrap();
    assert_eq!(go["kind"], "container");
    assert_eq!(gi["kind"], "container");
    assert_ne!(go["id"], gi["id"]);
    assert_eq!(gi["parent"], go["id"], "{gi}");
    assert_eq!(go["parent"], Value::Null);
    drop(guard);
}

/// A name that arrives after the start: a network namespace made by `unshare -n`, given a
/// name later by `ip netns attach`, is renamed in the stream (`container_rename` with the
/// name, every later event of it carrying the group), not left unnamed.
#[test]
fn a_name_that_comes_later_is_a_rename() {
    if !runtime_ok("a_name_that_comes_later_is_a_rename", Runtime::Netns) {
        return;
    }
    let name = common::runtimes::unique_name("late");
    let rec = Recording::start();
    let mut sleeper = Command::new("unshare")
        .args(["-n", "sleep", "3"])
        .spawn()
        .unwrap();
    let pid = sleeper.id();
    // After its start is handed on (within --latency, 250 ms), before it is named again
    // the second time (2 s after).
    std::thread::sleep(Duration::from_millis(1000));
    let attach = Command::new("ip")
        .args(["netns", "attach", &name, &pid.to_string()])
        .status()
        .unwrap();
    assert!(attach.success(), "ip netns attach");
    std::thread::sleep(Duration::from_millis(1700));
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let _ = Command::new("ip").args(["netns", "del", &name]).status();
    let (evs, err) = rec.stop();
    let label = evs
        .iter()
        .find(|e| e["type"] == "namespaces" && e["pid"] == pid && e["container"] != "host")
        .and_then(|e| e["container"].as_str())
        .unwrap_or_else(|| panic!("no namespaces event of {pid}\n{err}"))
        .to_string();
    let renamed = evs
        .iter()
        .find(|e| e["type"] == "container_rename" && e["container"] == label.as_str())
        .unwrap_or_else(|| panic!("no container_rename of {label}\n{err}"));
    assert_eq!(renamed["name"], name.as_str(), "{renamed}");
    assert_eq!(renamed["runtime"], "ip-netns", "{renamed}");
    assert_eq!(renamed["runtime_id"], name.as_str(), "{renamed}");
}
