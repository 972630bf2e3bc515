//! Symbols of a containerized process: a C program that exists only inside a busybox root
//! (a mount namespace pivoted into it, started after the recording began, so its mappings
//! carry the container's own paths) is named through /proc/PID/root while it runs, from
//! perf's build-id cache once it is gone, and never from a host file planted at the same
//! path with other contents.

mod common;
use common::rootfs;
use common::{live_ok, nswatch, perf};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The spinning program, kept alive until dropped (its namespace's init dies with it).
struct Spinner(Child);

impl Drop for Spinner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Removes the planted host directory when the test ends, however it ends.
struct Planted(PathBuf);

impl Drop for Planted {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cc_static(source: &str, defines: &[&str], out: &Path) -> Result<(), String> {
    let o = Command::new("cc")
        .args(["-static", "-O1", "-fno-omit-frame-pointer"])
        .args(defines)
        .arg("-o")
        .arg(out)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(source))
        .output()
        .map_err(|e| format!("cc: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "cc -static failed (libc6-dev's libc.a missing?): {}",
            String::from_utf8_lossy(&o.stderr)
        ))
    }
}

/// `nswatch report --by container --folded FILE` with `PERF_BUILDID_DIR=cache`: (stdout,
/// stderr).
fn folded(data: &Path, cache: &Path) -> (String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nswatch"))
        .args(["report", "--by", "container", "--folded"])
        .arg(data)
        .env("PERF_BUILDID_DIR", cache)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    (String::from_utf8(out.stdout).unwrap(), err)
}

/// The folded lines of the container `label`'s command `spinct`.
fn spinct_lines<'a>(folded: &'a str, label: &str) -> Vec<&'a str> {
    let prefix = format!("{label};spinct;");
    folded.lines().filter(|l| l.starts_with(&prefix)).collect()
}

#[test]
fn a_binary_only_in_a_containers_root_is_named_and_a_planted_host_file_never_used() {
    if !live_ok("a_binary_only_in_a_containers_root_is_named") {
        return;
    }
    if let Some(why) = rootfs::unavailable() {
        assert!(!common::require_live(), "{why}");
        eprintln!("SKIP: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The root: the busybox tree, the program at a path the host does not have, and the
    // directory the old root is moved to.
    let root = dir.path().join("root");
    let st = Command::new("cp")
        .arg("-a")
        .arg(rootfs::busybox_rootfs())
        .arg(&root)
        .status()
        .unwrap();
    assert!(st.success());
    let inner = format!("/opt/nswatch-ct-{}", std::process::id());
    let host_dir = PathBuf::from(&inner);
    assert!(!host_dir.exists(), "{inner} exists on the host");
    std::fs::create_dir_all(root.join(&inner[1..])).unwrap();
    std::fs::create_dir_all(root.join(".oldroot")).unwrap();
    let bin = format!("{inner}/spinct");
    if let Err(why) = cc_static("tests/progs/spinct.c", &[], &root.join(&bin[1..])) {
        assert!(!common::require_live(), "{why}");
        eprintln!("SKIP: {why}");
        return;
    }

    // perf's own build-id cache for this capture, away from the caller's ~/.debug.
    let cache = dir.path().join("buildid-cache");
    let empty = dir.path().join("empty-cache");
    std::fs::create_dir_all(&empty).unwrap();
    let data = dir.path().join("ct.data");
    let rec = Command::new("perf")
        .arg("--buildid-dir")
        .arg(&cache)
        .args([
            "record",
            "-q",
            "-g",
            "-F",
            "999",
            "--namespaces",
            "-a",
            "-o",
        ])
        .arg(&data)
        .args(["--", "sleep", "3"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    // A container as runtimes make them: its own mount and pid namespaces, the root
    // pivoted into its tree, the program exec'd there. It spins until the test stops it
    // (perf's own end, with build-ids, can take long on a busy machine).
    let script = format!(
        "mount --bind {r} {r} && cd {r} && pivot_root . .oldroot && exec {bin} 900",
        r = root.display()
    );
    let mut spinner = Spinner(
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "-p", "-f", "--kill-child"])
            .args(["/bin/sh", "-c", &script])
            .spawn()
            .unwrap(),
    );
    let out = rec.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data_s = data.to_str().unwrap();

    // perf recorded the program's build-id under its path inside the container.
    let ids = String::from_utf8(perf(&["buildid-list", "-i", data_s])).unwrap();
    assert!(ids.lines().any(|l| l.ends_with(&bin)), "{ids}");

    let rows: Vec<Value> = nswatch(&["report", "--by", "container", "--format", "ndjson", data_s])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ct = rows
        .iter()
        .find(|r| {
            r["kind"] == "container"
                && r["comms"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["comm"] == "spinct")
        })
        .unwrap_or_else(|| panic!("no container row with spinct: {rows:#?}"));
    let label = ct["container"].as_str().unwrap();

    // While it runs: named through its own root (no build-id cache given), as perf does.
    let (live, err) = folded(&data, &empty);
    let lines = spinct_lines(&live, label);
    assert!(!lines.is_empty(), "no {label};spinct stacks in\n{live}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(";main;") && l.contains("nswatch_ct_leaf")),
        "{lines:#?}\n{err}\nthe container's init: {:?}",
        spinner.0.try_wait()
    );

    // A different program planted at the same host path, laid out alike but with other
    // names: still named from its own root.
    let _planted = Planted(host_dir.clone());
    std::fs::create_dir_all(&host_dir).unwrap();
    cc_static(
        "tests/progs/spinct.c",
        &[
            "-Dnswatch_ct_leaf=impostor_leaf",
            "-Dnswatch_ct_spin=impostor_spin",
        ],
        &host_dir.join("spinct"),
    )
    .unwrap();
    let (again, _) = folded(&data, &empty);
    assert_eq!(spinct_lines(&again, label), lines);

    // Gone, with no build-id cache: the host file's build-id is not the recording's, so
    // its frames are `spinct+0x…`, never a name of the impostor's, and stderr says why.
    drop(spinner);
    std::thread::sleep(Duration::from_millis(200));
    let (gone, err) = folded(&data, &empty);
    let lines = spinct_lines(&gone, label);
    assert!(!lines.is_empty(), "{gone}");
    // Samples of the program's image (not those of the shell before its exec, whose host
    // libc is rightly named): every user frame is the program's, by file and offset.
    let image: Vec<&&str> = lines.iter().filter(|l| l.contains(";spinct+0x")).collect();
    assert!(!image.is_empty(), "{gone}");
    for l in image {
        let (stack, _) = l.rsplit_once(' ').unwrap();
        // The user frames come after the command, root first.
        let user: Vec<&str> = stack
            .split(';')
            .skip(2)
            .take_while(|f| !f.starts_with("entry_") && !f.starts_with("asm_"))
            .collect();
        assert!(
            user.iter()
                // `[vdso]+0x…`: the kernel's page that time() calls, no file.
                .all(|f| f.starts_with("spinct+0x") || f.starts_with('[')),
            "{l}"
        );
    }
    assert!(!gone.contains("impostor"), "{gone}");
    let said: Vec<&str> = err.lines().filter(|l| l.contains(&bin)).collect();
    assert_eq!(said.len(), 1, "said once: {err}");
    assert!(said[0].contains("build-id"), "{err}");

    // Gone, with perf's build-id cache: named from the copy perf kept.
    let (cached, _) = folded(&data, &cache);
    assert!(
        spinct_lines(&cached, label)
            .iter()
            .any(|l| l.contains(";main;") && l.contains("nswatch_ct_leaf")),
        "{cached}"
    );

    // The same stacks as pprof: the container's samples carry its label, and go's pprof
    // names the program's function in them.
    let pb = dir.path().join("ct.pb.gz");
    let out = Command::new(env!("CARGO_BIN_EXE_nswatch"))
        .args(["report", "--by", "container", "--format", "pprof", "-o"])
        .arg(&pb)
        .arg(&data)
        .env("PERF_BUILDID_DIR", &cache)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    match Command::new("go")
        .args([
            "tool",
            "pprof",
            "-top",
            "-sample_index=samples",
            "-nodefraction=0",
        ])
        .arg(format!("-tagfocus=container={label}"))
        .arg(&pb)
        .output()
    {
        Ok(top) => {
            let top = String::from_utf8_lossy(&top.stdout);
            assert!(top.contains("nswatch_ct_leaf"), "{top}");
            let n = ct["samples"].as_u64().unwrap();
            assert!(top.contains(&format!("accounting for {n}, ")), "{n}: {top}");
        }
        Err(e) => {
            assert!(
                !common::require_live(),
                "go: {e} (apt-get install golang-go)"
            );
            eprintln!("pprof not read back: go: {e} (apt-get install golang-go)");
        }
    }
}

/// A Rust program on the host (a copy of nswatch under a name of its own, reading a
/// fixture over and over), recorded by `perf record -g`: every function of it that
/// `perf script` names in the callchains, nswatch's folded stacks name alike, demangled as
/// perf demangles them.
#[test]
fn a_rust_binary_on_the_host_is_named_as_perf_names_it() {
    if !live_ok("a_rust_binary_on_the_host_is_named_as_perf_names_it") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("nswrust");
    common::copy_exe(env!("CARGO_BIN_EXE_nswatch").as_ref(), &bin, &["--version"]);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/uts-flip.data");
    let data = dir.path().join("rust.data");
    let data_s = data.to_str().unwrap();
    let script = format!(
        "end=$(($(date +%s) + 2)); while [ $(date +%s) -lt $end ]; do \
         {bin} report --format ndjson -i {fixture} > /dev/null || exit 1; done",
        bin = bin.display(),
        fixture = fixture.display()
    );
    perf(&[
        "record",
        "-q",
        "-g",
        "-F",
        "999",
        "--namespaces",
        "-o",
        data_s,
        "--",
        "sh",
        "-c",
        &script,
    ]);
    // perf's names of the program's own frames; a frame at a symbol's very start is left
    // out, as for kernel frames (tests/by_container.rs): perf names the symbol the
    // address is in, nswatch a return address by the call before it.
    let text = String::from_utf8(perf(&[
        "script",
        "-i",
        data_s,
        "-F",
        "comm,ip,sym,symoff,dso",
    ]))
    .unwrap();
    let dso = format!(" ({})", bin.display());
    // A `;` in a name (`[T; N]`) is written `:` in folded stacks, as FlameGraph's and
    // inferno's collapse scripts write it: `;` separates the frames.
    let theirs: std::collections::BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_suffix(&dso))
        .filter_map(|l| l.split_once(' ').map(|(_, symoff)| symoff))
        .filter_map(|symoff| symoff.rsplit_once("+0x"))
        .filter(|(sym, off)| *off != "0" && !sym.starts_with('['))
        .map(|(sym, _)| sym.replace(';', ":"))
        .collect();
    assert!(
        theirs.iter().any(|s| s.starts_with("nswatch::")),
        "perf names no nswatch:: function of {}: {theirs:?}",
        bin.display()
    );
    let (folded, _) = folded(&data, dir.path());
    let ours: std::collections::HashSet<&str> = folded
        .lines()
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(stack, _)| stack.split(';').nth(1) == Some("nswrust"))
        .flat_map(|(stack, _)| stack.split(';'))
        .collect();
    let missing: Vec<&String> = theirs
        .iter()
        .filter(|s| !ours.contains(s.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} functions perf names are not named so: {missing:#?} (capture kept at {})",
        missing.len(),
        theirs.len(),
        dir.keep().display()
    );
}
