//! Compiles bpf/nswatch.bpf.c (CO-RE) with clang and generates its libbpf-rs skeleton into
//! OUT_DIR, so that the object is built for this target and never committed.

use libbpf_cargo::SkeletonBuilder;
use std::env;
use std::path::PathBuf;
use std::process::Command;

const SRC: &str = "bpf/nswatch.bpf.c";

fn main() {
    println!("cargo:rerun-if-changed={SRC}");
    println!("cargo:rerun-if-changed=bpf/nswatch_core.h");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    if Command::new(&clang).arg("--version").output().is_err() {
        eprintln!(
            "error: `{clang}` not found: nswatch's eBPF program is compiled with clang. \
             Run scripts/bootstrap (it installs clang, libelf-dev, zlib1g-dev and pkg-config), \
             or set CLANG to a clang that targets bpf."
        );
        std::process::exit(1);
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let skel = out.join("nswatch.skel.rs");
    if let Err(e) = SkeletonBuilder::new()
        .source(SRC)
        .clang(&clang)
        .clang_args(["-O2", "-g", "-Wall", "-Ibpf"])
        .build_and_generate(&skel)
    {
        eprintln!("error: building {SRC}: {e:#}");
        std::process::exit(1);
    }
}
