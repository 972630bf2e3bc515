//! Compiles the CO-RE programs in bpf/ with clang and generates their libbpf-rs skeletons
//! into OUT_DIR, so that the objects are built for this target and never committed.

#[cfg(feature = "live")]
use libbpf_cargo::SkeletonBuilder;
#[cfg(feature = "live")]
use std::{env, path::PathBuf, process::Command};

/// Each program and the skeleton generated from it.
#[cfg(feature = "live")]
const PROGRAMS: [(&str, &str); 2] = [
    ("bpf/nswatch.bpf.c", "nswatch.skel.rs"),
    ("bpf/nswatch_iter.bpf.c", "nswatch_iter.skel.rs"),
];

/// Without live capture (the library alone, as a profiler embeds it) there is nothing to
/// compile: no clang is needed.
#[cfg(not(feature = "live"))]
fn main() {}

#[cfg(feature = "live")]
fn main() {
    for (src, _) in PROGRAMS {
        println!("cargo:rerun-if-changed={src}");
    }
    println!("cargo:rerun-if-changed=bpf/nswatch_core.h");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    if Command::new(&clang).arg("--version").output().is_err() {
        eprintln!(
            "error: `{clang}` not found: nswatch's eBPF programs are compiled with clang. \
             Run scripts/bootstrap (it installs clang, libelf-dev, zlib1g-dev and pkg-config), \
             or set CLANG to a clang that targets bpf."
        );
        std::process::exit(1);
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for (src, skel) in PROGRAMS {
        if let Err(e) = SkeletonBuilder::new()
            .source(src)
            .clang(&clang)
            .clang_args(["-O2", "-g", "-Wall", "-Ibpf"])
            .build_and_generate(out.join(skel))
        {
            eprintln!("error: building {src}: {e:#}");
            std::process::exit(1);
        }
    }
}
