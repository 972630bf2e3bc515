//! The project's own files: the README stays short, no file tells a history of how the
//! work went (git log holds that), and the first command a newcomer runs installs no
//! container runtime.

use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The longest README: what it is, a picture, install, usage, requirements, links.
const README_MAX_LINES: usize = 250;

#[test]
fn readme_stays_within_its_length() {
    let text = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let lines = text.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, more than {README_MAX_LINES}: the long parts belong in docs/"
    );
}

/// Text files of the project: git's tracked files where git knows the tree, else every file
/// under the project's text directories.
fn project_files() -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    let git = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-z"])
        .output();
    if let Some(out) = git
        .ok()
        .filter(|o| o.status.success() && !o.stdout.is_empty())
    {
        return out
            .stdout
            .split(|&b| b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| root.join(String::from_utf8_lossy(p).as_ref()))
            .collect();
    }
    let mut out = vec![root.join("README.md")];
    let mut dirs: Vec<PathBuf> = ["docs", "src", "scripts", "benches", "tests", "bpf"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Words that tell how the work went rather than what the project is. Matched
/// case-insensitively; "session" alone is a type of the library, so only its uses as a
/// stretch of work count.
const HISTORY: &[&str] = &[
    "this session",
    "previous session",
    "last session",
    "earlier session",
    "next session",
    "first build",
    "last build",
    "base build",
    "previous build",
    "earlier build",
    "previous run",
];

/// `session` followed by a number ("Session 10", "session 3's").
fn session_number(line: &str) -> bool {
    let mut rest = line;
    while let Some(i) = rest.find("session ") {
        rest = &rest[i + "session ".len()..];
        if rest.starts_with(|c: char| c.is_ascii_digit()) {
            return true;
        }
    }
    false
}

/// The history words in `text`, as "line N: …".
fn history_in(text: &str) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.to_lowercase();
            HISTORY.iter().any(|w| l.contains(w)) || session_number(&l)
        })
        .map(|(i, l)| format!("line {}: {}", i + 1, l.trim()))
        .collect()
}

#[test]
fn the_history_check_finds_what_it_is_for() {
    assert_eq!(history_in("Measured in Session 10.").len(), 1);
    assert_eq!(history_in("as the first build did\nok").len(), 1);
    assert_eq!(history_in("against the BASE BUILD").len(), 1);
    assert_eq!(history_in("unlike the previous run").len(), 1);
    // The library's Session is no history.
    assert!(history_in("Session::start opens the rings; the session's model").is_empty());
}

#[test]
fn no_file_tells_a_history_of_sessions_or_builds() {
    let own = Path::new(ROOT).join(file!());
    let mut found = Vec::new();
    for path in project_files() {
        if path == own {
            continue;
        }
        // Text only: fixtures and other binary files are skipped.
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if bytes.contains(&0) {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        for hit in history_in(&text) {
            found.push(format!(
                "{}: {hit}",
                path.strip_prefix(ROOT).unwrap_or(&path).display()
            ));
        }
    }
    assert!(
        found.is_empty(),
        "files that tell a history (git log holds it; say what is, with the command that \
         shows it):\n{}",
        found.join("\n")
    );
}

#[test]
fn bootstrap_installs_runtimes_only_for_the_tests() {
    let text = std::fs::read_to_string(Path::new(ROOT).join("scripts/bootstrap")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.contains("NSWATCH_TEST_RUNTIMES") && l.trim_start().starts_with("if "))
        .expect("scripts/bootstrap: no `if` on NSWATCH_TEST_RUNTIMES");
    let end = start
        + lines[start..]
            .iter()
            .position(|l| l.trim() == "fi")
            .expect("the NSWATCH_TEST_RUNTIMES block ends");
    let runtimes = [
        "runc",
        "crun",
        "lxc",
        "systemd-container",
        "bubblewrap",
        "firejail",
        "docker.io",
        "containerd",
        "podman",
    ];
    for (i, l) in lines.iter().enumerate() {
        let code = l.split('#').next().unwrap_or("");
        if (start..=end).contains(&i) {
            continue;
        }
        for rt in runtimes {
            assert!(
                !code.split_whitespace().any(|w| w.trim_matches('"') == rt),
                "scripts/bootstrap line {}: {rt} outside the NSWATCH_TEST_RUNTIMES block",
                i + 1
            );
        }
    }
    assert!(
        lines[start..=end].iter().any(|l| l.contains("runc")),
        "the runtimes are listed in the block"
    );
    // The README's first command runs bootstrap without asking for runtimes.
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    let first = readme
        .lines()
        .find(|l| l.contains("scripts/bootstrap &&"))
        .expect("README: the build command");
    assert!(!first.contains("NSWATCH_TEST_RUNTIMES"), "{first}");
    // And builds the whole workspace: `nswatch top` needs the tui crate's binary.
    assert!(
        first.contains("cargo build --release --workspace"),
        "{first}"
    );
}

/// The benchmarks' programs and scripts stay buildable: each C file compiles without a
/// warning, each shell script parses. They run only by hand (their figures are in
/// docs/PERFORMANCE.md), so nothing else would notice one left behind by a change.
#[test]
fn benchmarks_build_and_parse() {
    let benches = Path::new(ROOT).join("benches");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&benches)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let gcc = Command::new("gcc").arg("--version").output().is_ok();
    if !gcc {
        eprintln!("benchmarks_build_and_parse: no gcc here, the C programs are not compiled");
    }
    let (mut c, mut sh) = (0, 0);
    for f in &files {
        let out = match f.extension().and_then(|e| e.to_str()) {
            Some("c") if gcc => {
                c += 1;
                Command::new("gcc")
                    .args([
                        "-O2",
                        "-Wall",
                        "-Wextra",
                        "-Werror",
                        "-pthread",
                        "-fsyntax-only",
                    ])
                    .arg(f)
                    .output()
                    .unwrap()
            }
            Some("sh") => {
                sh += 1;
                Command::new("bash").arg("-n").arg(f).output().unwrap()
            }
            _ => continue,
        };
        assert!(
            out.status.success(),
            "{}: {}",
            f.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(sh > 0, "no shell script found in {}", benches.display());
    assert!(!gcc || c > 0, "no C program found in {}", benches.display());
}
