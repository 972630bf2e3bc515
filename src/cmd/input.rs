//! The inputs that `export` and `report` read: a perf.data file or an NDJSON event stream.

use anyhow::{bail, Context, Result};
use nswatch::perf_data::PerfData;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Where `report` and `export` read from, as perf takes it: `-i FILE` or the file alone,
/// `perf.data` in the current directory by default.
#[derive(clap::Args)]
pub struct InputArgs {
    /// The perf.data file (`perf record --namespaces`, file or pipe mode), or NDJSON
    /// written by `nswatch record` / `nswatch report --format ndjson` (told apart by their
    /// content); `-` reads standard input (`perf record -o - … | nswatch report -`).
    /// Default: perf.data.
    #[arg(
        short = 'i',
        long = "input",
        value_name = "FILE",
        conflicts_with = "file"
    )]
    input: Option<PathBuf>,
    /// The same as `-i FILE`.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
}

impl InputArgs {
    /// The path to read; an error that says how to make one when none was named and
    /// there is no perf.data here.
    pub fn path(&self) -> Result<&Path> {
        let path = self
            .input
            .as_deref()
            .or(self.file.as_deref())
            .unwrap_or(Path::new("perf.data"));
        if self.input.is_none() && self.file.is_none() && !path.exists() {
            bail!(
                "perf.data: no such file in the current directory (record one with `perf \
                 record --namespaces -a` or `nswatch record -o FILE`, or name it: -i FILE)"
            );
        }
        Ok(path)
    }
}

/// perf.data's magic in either byte order.
const PERF_MAGICS: [&[u8; 8]; 2] = [b"PERFILE2", b"2ELIFREP"];

/// An input file: perf.data (file or pipe mode) or NDJSON, told apart by its content.
pub enum Input {
    /// perf.data.
    Perf(Box<PerfData>),
    /// NDJSON lines.
    Ndjson(Box<dyn BufRead>),
}

/// True for perf.data. `perf_otherwise`: what is neither is read as perf.data, whose
/// reader says what is wrong with it (its magic, the offset where it ends).
fn classify(head: &[u8], name: &str, perf_otherwise: bool) -> Result<bool> {
    if head.len() >= 8 && PERF_MAGICS.iter().any(|m| head[..8] == m[..]) {
        return Ok(true);
    }
    match head.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(false),
        _ if perf_otherwise => Ok(true),
        None if head.is_empty() => bail!("{name}: empty input"),
        _ => bail!(
            "{name}: at offset 0x0: neither a perf.data file (magic \"PERFILE2\") nor NDJSON \
             events (a line starting with '{{')"
        ),
    }
}

/// Opens `path` (`-`: standard input; redirected from a file it is read like the named
/// file, a pipe is streamed). `perf_otherwise`: see [`classify`].
pub fn open(path: &Path, perf_otherwise: bool) -> Result<Input> {
    let name = path.display().to_string();
    let stdin = path.as_os_str() == "-";
    // Standard input redirected from a file is read like the named file (mapped, either
    // perf.data mode); a pipe is streamed.
    let stdin_file = if stdin {
        io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .ok()
            .map(File::from)
            .filter(|f| f.metadata().is_ok_and(|m| m.is_file()))
    } else {
        None
    };
    if stdin && stdin_file.is_none() {
        let mut head = Vec::new();
        io::stdin().take(8).read_to_end(&mut head)?;
        let rest = io::Cursor::new(head.clone()).chain(io::stdin());
        return Ok(if classify(&head, &name, perf_otherwise)? {
            Input::Perf(Box::new(
                PerfData::from_reader(Box::new(rest)).context(name)?,
            ))
        } else {
            Input::Ndjson(Box::new(BufReader::with_capacity(1 << 16, rest)))
        });
    }
    let file = match stdin_file {
        Some(f) => f,
        None => File::open(path).with_context(|| name.clone())?,
    };
    let mut head = [0u8; 8];
    let n = file.read_at(&mut head, 0).with_context(|| name.clone())?;
    Ok(if classify(&head[..n], &name, perf_otherwise)? {
        Input::Perf(Box::new(PerfData::open(path).context(name)?))
    } else {
        Input::Ndjson(Box::new(BufReader::with_capacity(1 << 16, file)))
    })
}
