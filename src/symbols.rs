//! Symbolization of sample callchains: kernel frames from /proc/kallsyms, user frames from the
//! ELF symbol tables of the files that MMAP/MMAP2 records map.
//!
//! The symbolizer follows each process's mappings through the stream (MMAP records add,
//! fork copies the parent's), so a frame is resolved with the mappings of its
//! process at the sample's time (the old image's until exec's new mappings replace them).
//! Files are read once and their symbols cached; a file that
//! cannot be read or parsed is remembered as such, so it costs one attempt.
//!
//! Names are demangled as perf prints them ([`demangle`]): Rust paths without their hash,
//! C++ names with their parameter types.

pub use crate::record::BuildId;
use crate::record::{Mmap, Record};
use hashbrown::HashMap;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// perf's callchain context markers (PERF_CONTEXT_HV, KERNEL, USER, GUEST…) are the values
/// from here up; they say which mode the following frames are in and are not addresses.
pub const PERF_CONTEXT_MAX: u64 = 0xffff_ffff_ffff_f000;
const PERF_CONTEXT_KERNEL: u64 = (-128i64) as u64;
const PERF_CONTEXT_USER: u64 = (-512i64) as u64;

/// Addresses from here up are kernel text on x86_64 and arm64, for callchains that carry
/// no context marker.
const KERNEL_START: u64 = 0xffff_8000_0000_0000;

/// The name perf prints for symbol `name`: a Rust symbol (legacy `_ZN…17h<hash>E` or v0
/// `_R…`) as its path without the hash (`nswatch::perf_data::read_exact_or_eof`), a C++ one
/// without its parameter and return types (`ns::f` for `ns::f(int)`, as `perf report` and
/// `perf script` print it unless asked for more with `-v`), anything else as it is.
///
/// ```
/// use nswatch::symbols::demangle;
/// assert_eq!(demangle("_ZN7nswatch9perf_data17read_exact_or_eof17h0123456789abcdefE"),
///            "nswatch::perf_data::read_exact_or_eof");
/// assert_eq!(demangle("_ZN2ns1fEi"), "ns::f");
/// assert_eq!(demangle("main"), "main");
/// ```
pub fn demangle(name: &str) -> Cow<'_, str> {
    if !name.starts_with("_Z") && !name.starts_with("_R") && !name.starts_with("__Z") {
        return Cow::Borrowed(name);
    }
    if let Ok(d) = rustc_demangle::try_demangle(name) {
        // A legacy Rust symbol is also a valid C++ name: it is Rust when its last element
        // is the hash, which the alternate form leaves out.
        let short = format!("{d:#}");
        if name.starts_with("_R") || short != d.to_string() {
            return Cow::Owned(short);
        }
    }
    let plain = cpp_demangle::DemangleOptions::new()
        .no_params()
        .no_return_type();
    match cpp_demangle::Symbol::new(name).map(|s| s.demangle_with_options(&plain)) {
        Ok(Ok(d)) => Cow::Owned(d),
        _ => Cow::Borrowed(name),
    }
}

/// A function symbol as read: (start, size, name as in the file, binding rank: 0 global,
/// 1 local, 2 weak).
type Alias = (u64, u64, Box<str>, u8);

/// The symbols sorted by start, one per address. Of aliases (symbols at one address:
/// `memcpy` and `__memcpy`, or generic functions the compiler made one) the one perf
/// names (its `choose_best_symbol`): one with a size, then not weak, then global, then
/// the fewest leading underscores, then the longest name, demangled as perf keeps it.
fn one_per_address(mut syms: Vec<Alias>) -> Vec<(u64, u64, Box<str>)> {
    syms.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then((a.1 == 0).cmp(&(b.1 == 0)))
            .then(a.3.cmp(&b.3))
    });
    let underscores = |n: &str| n.bytes().take_while(|&b| b == b'_').count();
    let mut out = Vec::with_capacity(syms.len());
    let mut i = 0;
    while i < syms.len() {
        let (addr, sized, rank) = (syms[i].0, syms[i].1 != 0, syms[i].3);
        let mut end = i + 1;
        while end < syms.len() && syms[end].0 == addr {
            end += 1;
        }
        let mut best = i;
        // Names are demangled only where aliases tie on the rest: a few of a binary's
        // hundreds of thousands.
        let tied = syms[i + 1..end]
            .iter()
            .take_while(|s| (s.1 != 0, s.3) == (sized, rank))
            .count();
        if tied > 0 {
            let mut best_name = demangle(&syms[i].2).into_owned();
            for (k, alias) in syms.iter().enumerate().skip(i + 1).take(tied) {
                let name = demangle(&alias.2);
                let (a, b) = (underscores(&best_name), underscores(&name));
                if b < a || (b == a && name.len() > best_name.len()) {
                    best = k;
                    best_name = name.into_owned();
                }
            }
        }
        let (start, size) = (syms[best].0, syms[best].1);
        out.push((start, size, std::mem::take(&mut syms[best].2)));
        i = end;
    }
    out
}

/// Symbols of one ELF file, addresses in the file's own (link-time) address space.
///
/// ```
/// use nswatch::symbols::ElfSymbols;
///
/// let exe = std::fs::read(std::env::current_exe()?)?;
/// assert!(ElfSymbols::parse(&exe).is_some());
/// assert!(ElfSymbols::parse(b"not an object file").is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct ElfSymbols {
    /// PT_LOAD segments: (file offset, file size, virtual address).
    loads: Vec<(u64, u64, u64)>,
    /// Function symbols sorted by start: (start, size, name as in the file).
    syms: Vec<(u64, u64, Box<str>)>,
    /// The demangled name of each symbol, made on its first lookup: a Rust binary has
    /// hundreds of thousands of symbols, of which a profile meets a few hundred.
    demangled: Vec<OnceLock<Box<str>>>,
    /// The file's GNU build-id, when it has one.
    build_id: Option<BuildId>,
}

impl ElfSymbols {
    /// Reads the function symbols of an ELF image: .symtab, else .dynsym (stripped files
    /// keep only the latter). `None` when `data` is not an object file `object` reads.
    pub fn parse(data: &[u8]) -> Option<ElfSymbols> {
        use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};
        let file = object::File::parse(data).ok()?;
        let build_id = file.build_id().ok().flatten().and_then(BuildId::new);
        let loads = file
            .segments()
            .map(|s| {
                let (off, size) = s.file_range();
                (off, size, s.address())
            })
            .collect();
        fn take<'d, S: ObjectSymbol<'d>>(it: impl Iterator<Item = S>) -> Vec<Alias> {
            it.filter(|s| s.kind() == SymbolKind::Text && s.is_definition() && s.address() != 0)
                .filter_map(|s| {
                    let rank = if s.is_weak() {
                        2
                    } else if s.is_global() {
                        0
                    } else {
                        1
                    };
                    Some((s.address(), s.size(), s.name().ok()?.into(), rank))
                })
                .collect()
        }
        let mut syms = take(file.symbols());
        if syms.is_empty() {
            syms = take(file.dynamic_symbols());
        }
        let syms = one_per_address(syms);
        Some(ElfSymbols {
            loads,
            demangled: (0..syms.len()).map(|_| OnceLock::new()).collect(),
            syms,
            build_id,
        })
    }

    /// Reads and parses the file at `path`.
    pub fn open(path: &Path) -> Option<ElfSymbols> {
        ElfSymbols::read(&std::fs::File::open(path).ok()?)
    }

    fn read(file: &std::fs::File) -> Option<ElfSymbols> {
        // SAFETY: read-only private map, dropped before return; a file truncated meanwhile
        // would fault, as it would for perf.
        let map = unsafe { memmap2::Mmap::map(file) }.ok()?;
        ElfSymbols::parse(&map)
    }

    /// The file's GNU build-id (`.note.gnu.build-id`), when it has one.
    pub fn build_id(&self) -> Option<BuildId> {
        self.build_id
    }

    /// The link-time address of file offset `off`, through the PT_LOAD that holds it.
    pub fn vaddr_of_offset(&self, off: u64) -> Option<u64> {
        self.loads
            .iter()
            .find(|(o, size, _)| off >= *o && off - *o < *size)
            .map(|(o, _, vaddr)| off - o + vaddr)
    }

    /// The function containing link-time address `vaddr`. A symbol without a size (common
    /// in hand-written assembly) covers up to the next one.
    pub fn lookup(&self, vaddr: u64) -> Option<&str> {
        let i = self.syms.partition_point(|s| s.0 <= vaddr).checked_sub(1)?;
        let (start, size, name) = &self.syms[i];
        let end = if *size > 0 {
            start + size
        } else {
            self.syms.get(i + 1).map_or(u64::MAX, |n| n.0)
        };
        if vaddr >= end {
            return None;
        }
        if let Some(d) = self.demangled[i].get() {
            return Some(d);
        }
        Some(match demangle(name) {
            Cow::Borrowed(n) => n,
            Cow::Owned(d) => self.demangled[i].get_or_init(|| d.into()),
        })
    }
}

/// The kernel's symbols, from /proc/kallsyms (modules included).
///
/// ```
/// use nswatch::symbols::Kallsyms;
///
/// let k = Kallsyms::parse(
///     "ffffffff81000000 T _text\n\
///      ffffffff81001000 T do_syscall_64\n\
///      ffffffff81002000 t helper [some_module]\n",
/// );
/// assert_eq!(k.address_of("_text"), Some(0xffffffff81000000));
/// assert_eq!(k.lookup(0xffffffff81001010), Some("do_syscall_64"));
/// ```
#[derive(Debug, Default)]
pub struct Kallsyms {
    syms: Vec<(u64, Box<str>)>,
}

impl Kallsyms {
    /// Parses the text of /proc/kallsyms (`ADDR TYPE NAME [MODULE]` lines). Text symbols only;
    /// all-zero addresses (kptr_restrict) give an empty table.
    pub fn parse(text: &str) -> Kallsyms {
        let mut syms: Vec<(u64, Box<str>)> = text
            .lines()
            .filter_map(|l| {
                let mut f = l.split_ascii_whitespace();
                let addr = u64::from_str_radix(f.next()?, 16).ok()?;
                let ty = f.next()?;
                let name = f.next()?;
                (addr != 0 && matches!(ty, "t" | "T" | "w" | "W")).then(|| (addr, name.into()))
            })
            .collect();
        // Stable: of aliases at one address (`memcpy` and `__pi_memcpy`), the lookup gives
        // the last listed, as perf names them.
        syms.sort_by_key(|s| s.0);
        Kallsyms { syms }
    }

    /// Reads the running kernel's table (root sees addresses; others may see zeros).
    pub fn read() -> Option<Kallsyms> {
        let k = Kallsyms::parse(&std::fs::read_to_string("/proc/kallsyms").ok()?);
        (!k.syms.is_empty()).then_some(k)
    }

    /// The address of symbol `name` (a linear scan: used once, for `_text`).
    pub fn address_of(&self, name: &str) -> Option<u64> {
        self.syms.iter().find(|s| &*s.1 == name).map(|s| s.0)
    }

    /// The function containing `addr`.
    pub fn lookup(&self, addr: u64) -> Option<&str> {
        let i = self.syms.partition_point(|s| s.0 <= addr).checked_sub(1)?;
        Some(&self.syms[i].1)
    }

    /// Number of symbols.
    pub fn len(&self) -> usize {
        self.syms.len()
    }

    /// True when the table has no symbol.
    pub fn is_empty(&self) -> bool {
        self.syms.is_empty()
    }
}

/// True when a recording with this host name and kernel release was made by the running
/// system, so that its kernel addresses can be looked up in today's /proc/kallsyms. Both
/// must be known and equal: a file of unknown origin keeps raw kernel addresses.
pub fn recorded_here(hostname: Option<&str>, os_release: Option<&str>) -> bool {
    // SAFETY: utsname is plain old data; uname fills it and NUL-terminates its fields.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return false;
    }
    let field = |f: &[libc::c_char]| -> String {
        let b: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    hostname == Some(field(&u.nodename).as_str()) && os_release == Some(field(&u.release).as_str())
}

/// One executable mapping of a process.
#[derive(Debug, Clone)]
struct Mapping {
    start: u64,
    end: u64,
    pgoff: u64,
    file: Arc<str>,
    /// The build-id the MMAP2 record carries, if any.
    build_id: Option<BuildId>,
    /// The file's symbols once looked for (`Some(None)`: looked for, none usable). A fork's
    /// copy keeps them: it maps the same file.
    elf: Option<Option<Arc<ElfSymbols>>>,
}

/// A file's identity on its file system, so that one file reached by several paths (the
/// same libc through every process's /proc/PID/root) is read once.
type FileKey = (u64, u64, i64, i64);

/// Resolves callchain addresses to names, following the mappings of every process.
///
/// A file is read through the process's own root (`/proc/PID/root/PATH`, so a container's
/// files are its own, not the host's at the same path) when [`Symbolizer::set_process_roots`]
/// is on, else at the host's path; a file whose build-id differs from the one the recording
/// gives for it is never used, and perf's build-id cache (`~/.debug/.build-id/`) is read
/// first when that build-id is known. Parsed symbol tables are kept by build-id: a process
/// that maps a file already read (another container of the same image) reuses them.
///
/// The type is `Send`: a profiler may keep it on a thread of its own.
///
/// ```
/// use nswatch::symbols::Symbolizer;
///
/// // Names the frames of processes running here, through their own roots.
/// let mut sym = Symbolizer::live();
/// let name = sym.symbolize(std::process::id(), main as *const () as u64);
/// assert!(name.ends_with("main"), "{name}");
/// # fn main() {}
/// ```
#[derive(Debug, Default)]
pub struct Symbolizer {
    kernel: Option<Kallsyms>,
    /// Added to a recorded kernel address to find it in today's kallsyms (KASLR moves the
    /// kernel at each boot; the recording's `_text` is in its kernel MMAP record).
    kernel_slide: u64,
    /// `_text` of the running kernel, to compute the slide.
    kernel_text: Option<u64>,
    /// `_text` of the recording kernel, from its MMAP record.
    recorded_text: Option<u64>,
    /// A kallsyms table being read on another thread (see
    /// [`Symbolizer::set_kallsyms_reading`]), taken at the first kernel frame.
    kernel_reading: Option<std::thread::JoinHandle<Option<Kallsyms>>>,
    maps: HashMap<u32, Vec<Mapping>>,
    /// Prefix for host-path lookups (a root directory the recording's paths are relative to).
    root: Option<PathBuf>,
    /// Read files through /proc/PID/root (the recording was made on this machine).
    process_roots: bool,
    /// Read /proc/PID/maps on an address no known mapping covers (a live profiler).
    live: bool,
    /// When each process's maps were last read in live mode, to read them at most once per
    /// [`LIVE_MAPS_INTERVAL`] for addresses that stay unmapped (JIT code, a stray word).
    maps_read: HashMap<u32, Instant>,
    /// perf's build-id cache directories, searched in order.
    cache_dirs: Vec<PathBuf>,
    /// The build-ids the recording gives for each path.
    recorded: HashMap<Arc<str>, Vec<BuildId>>,
    /// Symbol tables by build-id: the cache that names a short-lived container's frames.
    by_id: HashMap<BuildId, Arc<ElfSymbols>>,
    /// Files read, by identity: their symbols, `None` for a file that is no usable ELF.
    by_file: HashMap<FileKey, Option<Arc<ElfSymbols>>>,
    /// Why files were not used, one line per path, for the caller to show once.
    notes: Vec<String>,
    noted: hashbrown::HashSet<Arc<str>>,
    /// The names [`Symbolizer::frame_ids`] gives ids of.
    names: FrameNames,
    /// Kernel addresses already named: a kernel's hot paths recur in most stacks.
    kernel_ids: HashMap<u64, u32>,
    /// Kernel addresses met while the table was still being read, and their ids, named
    /// when the names are asked for.
    kernel_unnamed: Vec<(u32, u64)>,
}

/// Frame names, each kept once: a stack is then a list of small ids, so that a profile of
/// 100,000 samples allocates a name per function, not per frame of every sample, and
/// compares stacks as integers.
///
/// ```
/// use nswatch::symbols::FrameNames;
///
/// let mut names = FrameNames::default();
/// let id = names.intern("do_syscall_64");
/// assert_eq!(names.intern("do_syscall_64"), id); // one id per name
/// assert_eq!(names.name(id), "do_syscall_64");
/// ```
#[derive(Debug, Default)]
pub struct FrameNames {
    ids: HashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl FrameNames {
    /// The id of `name`, given to it on its first call.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    /// The name of `id` (one [`FrameNames::intern`] gave).
    pub fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }

    /// An id whose name is given later ([`FrameNames::name_later`]): two such ids may
    /// end up with one name.
    fn unnamed(&mut self) -> u32 {
        self.names.push("".into());
        (self.names.len() - 1) as u32
    }

    /// Gives `id` (from [`FrameNames::unnamed`]) its name; the first id of a name is the
    /// one later calls of [`FrameNames::intern`] get.
    fn name_later(&mut self, id: u32, name: &str) {
        self.names[id as usize] = name.into();
        if !self.ids.contains_key(name) {
            self.ids.insert(name.into(), id);
        }
    }
}

/// How long a live symbolizer waits before it reads a process's maps again for an address
/// that no mapping covered.
const LIVE_MAPS_INTERVAL: Duration = Duration::from_millis(200);

/// The last path component, for `module+0xoff` frames.
fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// perf's build-id cache directories: `$PERF_BUILDID_DIR` when set (as perf reads it), else
/// `$HOME/.debug`; and root's, which `sudo perf record` fills when sudo sets HOME to root's.
pub fn build_id_cache_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("PERF_BUILDID_DIR").filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(d));
        return dirs;
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        dirs.push(Path::new(&home).join(".debug"));
    }
    let root = PathBuf::from("/root/.debug");
    if !dirs.contains(&root) {
        dirs.push(root);
    }
    dirs
}

/// The path of `id` in the build-id cache `dir`: `.build-id/xx/yyyy…`, a link to perf's
/// directory for that file (holding `elf`) or, from older perf, to the file itself.
fn cached_file(dir: &Path, id: &BuildId) -> PathBuf {
    let hex = id.to_string();
    let link = dir.join(".build-id").join(&hex[..2]).join(&hex[2..]);
    if link.is_dir() {
        link.join("elf")
    } else {
        link
    }
}

impl Symbolizer {
    /// A symbolizer without kernel symbols; user frames are read from the files MMAP
    /// records name, at their host paths.
    pub fn new() -> Symbolizer {
        Symbolizer::default()
    }

    /// A symbolizer for a profiler that samples live processes: kernel frames from
    /// /proc/kallsyms, each process's files read through its own root, its mappings read
    /// from /proc/PID/maps when an address is not in those it knows (MMAP records may be
    /// given to [`Symbolizer::observe`] too), perf's build-id cache searched. Call
    /// [`Symbolizer::symbolize`] while the process lives; its files' symbols stay cached by
    /// build-id after it is gone.
    ///
    /// ```
    /// let mut sym = nswatch::symbols::Symbolizer::live();
    /// let here = std::process::id();
    /// let name = sym.symbolize(here, main as *const () as u64);
    /// assert!(name.ends_with("main"), "{name}");
    /// # fn main() {}
    /// ```
    pub fn live() -> Symbolizer {
        let mut s = Symbolizer::new();
        if let Some(k) = Kallsyms::read() {
            s.set_kallsyms(k);
        }
        s.live = true;
        s.process_roots = true;
        s.cache_dirs = build_id_cache_dirs();
        s
    }

    /// Uses `kallsyms` for kernel frames. Only sound when the recording was made by the
    /// running kernel: the caller checks the file's host name and kernel release.
    pub fn set_kallsyms(&mut self, kallsyms: Kallsyms) {
        self.kernel_text = kallsyms.address_of("_text");
        self.kernel = Some(kallsyms);
        self.kernel_reading = None;
        self.set_slide();
    }

    /// Uses the table a thread is reading (`std::thread::spawn(Kallsyms::read)`), from the
    /// first kernel frame on: /proc/kallsyms takes ~60 ms to read, which the caller spends
    /// reading its input meanwhile. The same soundness condition as
    /// [`Symbolizer::set_kallsyms`] holds.
    pub fn set_kallsyms_reading(&mut self, reading: std::thread::JoinHandle<Option<Kallsyms>>) {
        self.kernel_reading = Some(reading);
    }

    /// Takes the table being read, once it is needed.
    fn kernel_ready(&mut self) {
        if let Some(reading) = self.kernel_reading.take() {
            if let Ok(Some(k)) = reading.join() {
                self.set_kallsyms(k);
            }
        }
    }

    /// KASLR moves the kernel at each boot: a recorded address plus the slide is today's.
    fn set_slide(&mut self) {
        if let (Some(now), Some(then)) = (self.kernel_text, self.recorded_text) {
            self.kernel_slide = now.wrapping_sub(then);
        }
        self.kernel_ids.clear();
    }

    /// True when kernel frames are symbolized.
    pub fn has_kernel(&self) -> bool {
        self.kernel.is_some()
    }

    /// Looks files up under `root` instead of `/` (a copy of the recording machine's files).
    pub fn set_root(&mut self, root: impl Into<PathBuf>) {
        self.root = Some(root.into());
    }

    /// Reads each process's files through `/proc/PID/root`, as perf does through the
    /// process's mount namespace: only sound for a recording made on this machine (the
    /// caller checks, as for kernel symbols). A process that is gone has no root any more;
    /// its files are then looked for in the build-id cache, then at the host's path when
    /// the build-id allows.
    pub fn set_process_roots(&mut self, on: bool) {
        self.process_roots = on;
    }

    /// Searches these build-id cache directories (see [`build_id_cache_dirs`]).
    pub fn set_build_id_cache(&mut self, dirs: Vec<PathBuf>) {
        self.cache_dirs = dirs;
    }

    /// The build-ids a recording gives for its files (path as mapped, build-id), from
    /// [`crate::perf_data::features::Features::build_ids`]: a file at that path is used only
    /// when its build-id is one of them.
    pub fn add_recorded_build_ids<'i>(
        &mut self,
        ids: impl IntoIterator<Item = &'i (String, BuildId)>,
    ) {
        for (path, id) in ids {
            let list = self.recorded.entry(Arc::from(path.as_str())).or_default();
            if !list.contains(id) {
                list.push(*id);
            }
        }
    }

    /// Why files were not used (a build-id that differs, a file that is gone), one line per
    /// path, each once; the frames in those files are named `file+0xoffset`.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Follows one record: MMAP/MMAP2 add a mapping (replacing what it overlaps), FORK of a
    /// new process copies its parent's, the exit of a process drops them. Exec keeps the
    /// old ones until new mappings cover them, as perf does: samples taken inside execve()
    /// after the COMM record still walk the old user stack.
    pub fn observe(&mut self, rec: &Record<'_>) {
        match rec {
            Record::Mmap(m) => self.add_mapping(m),
            Record::Fork(t) if t.pid != t.ppid => {
                if let Some(parent) = self.maps.get(&t.ppid).cloned() {
                    self.maps.insert(t.pid, parent);
                }
            }
            Record::Exit(t) if t.pid == t.tid => self.forget(t.pid),
            _ => {}
        }
    }

    /// Drops what is known of process `pid`'s mappings (it exited). The symbols of its
    /// files stay cached by build-id.
    pub fn forget(&mut self, pid: u32) {
        self.maps.remove(&pid);
        self.maps_read.remove(&pid);
    }

    fn add_mapping(&mut self, m: &Mmap<'_>) {
        if m.pid == u32::MAX {
            // perf's kernel map: its pgoff is where the recording kernel's `_text` was.
            if m.filename.starts_with("[kernel.kallsyms]") && m.pgoff != 0 {
                self.recorded_text = Some(m.pgoff);
                self.set_slide();
            }
            return;
        }
        const PROT_EXEC: u32 = 4;
        if m.prot != 0 && m.prot & PROT_EXEC == 0 {
            return;
        }
        let file: Arc<str> = match self.recorded.get_key_value(&*m.filename) {
            Some((k, _)) => k.clone(),
            None => m.filename.as_ref().into(),
        };
        self.insert_mapping(m.pid, m.addr, m.len, m.pgoff, file, m.build_id);
    }

    fn insert_mapping(
        &mut self,
        pid: u32,
        addr: u64,
        len: u64,
        pgoff: u64,
        file: Arc<str>,
        build_id: Option<BuildId>,
    ) {
        let end = addr.saturating_add(len);
        let list = self.maps.entry(pid).or_default();
        // A new mapping replaces whatever it overlaps (mmap MAP_FIXED over an old one).
        list.retain(|x| x.end <= addr || x.start >= end);
        let at = list.partition_point(|x| x.start < addr);
        list.insert(
            at,
            Mapping {
                start: addr,
                end,
                pgoff,
                file,
                build_id,
                elf: None,
            },
        );
    }

    /// Reads the executable mappings of live process `pid` from /proc/PID/maps, replacing
    /// what was known. False when the process is gone or its maps unreadable.
    fn read_maps(&mut self, pid: u32) -> bool {
        self.maps_read.insert(pid, Instant::now());
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/maps")) else {
            return false;
        };
        let old = self.maps.remove(&pid).unwrap_or_default();
        for line in text.lines() {
            // START-END PERMS OFFSET DEV INODE PATH (the path may hold spaces).
            let mut f = line.splitn(6, ' ');
            let (Some(range), Some(perms), Some(off), Some(_), Some(_)) =
                (f.next(), f.next(), f.next(), f.next(), f.next())
            else {
                continue;
            };
            let path = f.next().unwrap_or("").trim_start();
            let Some((a, b)) = range.split_once('-') else {
                continue;
            };
            let (Ok(a), Ok(b), Ok(off)) = (
                u64::from_str_radix(a, 16),
                u64::from_str_radix(b, 16),
                u64::from_str_radix(off, 16),
            ) else {
                continue;
            };
            if !perms.contains('x') || path.is_empty() {
                continue;
            }
            // A mapping already known keeps the symbols it found.
            if let Some(m) = old
                .iter()
                .find(|m| m.start == a && m.end == b && m.pgoff == off && &*m.file == path)
            {
                self.maps.entry(pid).or_default().push(m.clone());
                continue;
            }
            self.insert_mapping(pid, a, b - a, off, path.into(), None);
        }
        true
    }

    /// The index of the mapping of `pid` that holds `addr`.
    fn mapping_at(&self, pid: u32, addr: u64) -> Option<usize> {
        let l = self.maps.get(&pid)?;
        let i = l.partition_point(|x| x.start <= addr).checked_sub(1)?;
        (addr < l[i].end).then_some(i)
    }

    /// Notes once per path why its file was not used.
    fn note(&mut self, file: &Arc<str>, why: String) {
        if self.noted.insert(file.clone()) {
            self.notes.push(why);
        }
    }

    /// Reads (or finds already read) the file at `path`: its symbols, keyed by identity.
    fn read_file(&mut self, path: &Path) -> Option<Option<Arc<ElfSymbols>>> {
        use std::os::unix::fs::MetadataExt;
        let file = std::fs::File::open(path).ok()?;
        let meta = file.metadata().ok()?;
        if !meta.is_file() {
            return Some(None);
        }
        let key = (meta.dev(), meta.ino(), meta.size() as i64, meta.mtime());
        if let Some(e) = self.by_file.get(&key) {
            return Some(e.clone());
        }
        let e = ElfSymbols::read(&file).map(|e| match e.build_id {
            // The same contents read before by another path: one table.
            Some(id) => self.by_id.entry(id).or_insert_with(|| Arc::new(e)).clone(),
            None => Arc::new(e),
        });
        self.by_file.insert(key, e.clone());
        Some(e)
    }

    /// The symbols of `file` as mapped by process `pid`: by build-id from what was read
    /// before or perf's cache, else through the process's root (or at the host path when it
    /// has none), never from a file whose build-id is not the recording's.
    fn resolve(&mut self, pid: u32, m: &Mapping) -> Option<Arc<ElfSymbols>> {
        let file = &m.file;
        // perf's pseudo-files ([vdso], [heap], //anon, memfd) have no file to read.
        if !file.starts_with('/') || file.ends_with(" (deleted)") {
            return None;
        }
        let expected: Vec<BuildId> = match m.build_id {
            Some(id) => vec![id],
            None => self.recorded.get(file).cloned().unwrap_or_default(),
        };
        for id in &expected {
            if let Some(e) = self.by_id.get(id) {
                return Some(e.clone());
            }
        }
        for id in &expected {
            for dir in self.cache_dirs.clone() {
                let path = cached_file(&dir, id);
                if let Some(Some(e)) = self.read_file(&path) {
                    if e.build_id == Some(*id) {
                        return Some(e);
                    }
                }
            }
        }
        let rel = file.trim_start_matches('/');
        let mut candidates = Vec::new();
        let proc_root = PathBuf::from(format!("/proc/{pid}/root"));
        if self.process_roots && proc_root.exists() {
            if let Some(i) = self.mapping_index_of(pid, m) {
                // A live process's mapping, opened as the kernel holds it: right even where
                // its path does not resolve from its root (a chroot inside its namespace).
                let l = &self.maps[&pid][i];
                if self.live {
                    candidates.push(PathBuf::from(format!(
                        "/proc/{pid}/map_files/{:x}-{:x}",
                        l.start, l.end
                    )));
                }
            }
            candidates.push(proc_root.join(rel));
        } else {
            candidates.push(match &self.root {
                Some(r) => r.join(rel),
                None => PathBuf::from(&**file),
            });
        }
        let mut refused = None;
        for path in &candidates {
            let Some(e) = self.read_file(path) else {
                continue;
            };
            let Some(e) = e else {
                continue;
            };
            match e.build_id {
                Some(id) if !expected.is_empty() && !expected.contains(&id) => {
                    refused = Some((path.clone(), id));
                }
                _ => return Some(e),
            }
        }
        let want = expected
            .iter()
            .map(|id| id.to_string())
            .collect::<Vec<_>>()
            .join(" or ");
        let where_ = if self.process_roots && !proc_root.exists() {
            format!("process {pid} is gone, so is its root, ")
        } else {
            String::new()
        };
        let why = match refused {
            Some((path, id)) => format!(
                "{file}: not symbolized: {} has build-id {id}, the recording's is {want}, \
                 and {where_}perf's build-id cache has no copy",
                path.display()
            ),
            None if !expected.is_empty() => format!(
                "{file}: not symbolized: {where_}no file with build-id {want} \
                 (perf's build-id cache has no copy)"
            ),
            None => format!("{file}: not symbolized: {where_}no readable ELF file at that path"),
        };
        self.note(file, why);
        None
    }

    fn mapping_index_of(&self, pid: u32, m: &Mapping) -> Option<usize> {
        self.maps
            .get(&pid)?
            .iter()
            .position(|x| x.start == m.start && x.end == m.end)
    }

    /// The name of user address `addr` in process `pid`: the function, else
    /// `file+0xVADDR`, else `[unknown]`.
    pub fn user_frame(&mut self, pid: u32, addr: u64) -> String {
        let id = self.user_frame_id(pid, addr);
        self.names.name(id).to_string()
    }

    fn user_frame_id(&mut self, pid: u32, addr: u64) -> u32 {
        let mut at = self.mapping_at(pid, addr);
        if at.is_none()
            && self.live
            && self
                .maps_read
                .get(&pid)
                .is_none_or(|t| t.elapsed() >= LIVE_MAPS_INTERVAL)
            && self.read_maps(pid)
        {
            at = self.mapping_at(pid, addr);
        }
        let Some(i) = at else {
            return self.names.intern("[unknown]");
        };
        let m = &self.maps[&pid][i];
        let elf = match &m.elf {
            Some(e) => e.clone(),
            None => {
                let m = m.clone();
                let e = self.resolve(pid, &m);
                self.maps.get_mut(&pid).expect("looked up")[i].elf = Some(e.clone());
                e
            }
        };
        let m = &self.maps[&pid][i];
        let off = addr - m.start + m.pgoff;
        let vaddr = elf.as_ref().and_then(|e| e.vaddr_of_offset(off));
        if let (Some(e), Some(v)) = (&elf, vaddr) {
            if let Some(name) = e.lookup(v) {
                return self.names.intern(name);
            }
        }
        let name = format!("{}+{:#x}", basename(&m.file), vaddr.unwrap_or(off));
        self.names.intern(&name)
    }

    /// The name of the function at user address `addr` of live process `pid` (a live
    /// profiler's call; see [`Symbolizer::live`]): [`Symbolizer::user_frame`] for user
    /// addresses, the kernel's function for kernel ones.
    pub fn symbolize(&mut self, pid: u32, addr: u64) -> String {
        if addr >= KERNEL_START {
            self.kernel_ready();
            self.kernel_frame(addr)
        } else {
            self.user_frame(pid, addr)
        }
    }

    /// The name of kernel address `addr`: the function when kallsyms is in use, else
    /// `[k] 0xADDR`.
    pub fn kernel_frame(&self, addr: u64) -> String {
        match self
            .kernel
            .as_ref()
            .and_then(|k| k.lookup(addr.wrapping_add(self.kernel_slide)))
        {
            Some(name) => name.to_string(),
            None => format!("[k] {addr:#x}"),
        }
    }

    fn kernel_frame_id(&mut self, addr: u64) -> u32 {
        if let Some(&id) = self.kernel_ids.get(&addr) {
            return id;
        }
        if self
            .kernel_reading
            .as_ref()
            .is_some_and(|r| r.is_finished())
        {
            self.name_unnamed();
        }
        if self.kernel_reading.is_some() {
            // Named once the table is there, so that its reading overlaps the caller's
            // (each address on its own id until then: a few milliseconds' worth).
            let id = self.names.unnamed();
            self.kernel_unnamed.push((id, addr));
            self.kernel_ids.insert(addr, id);
            return id;
        }
        let id = match self
            .kernel
            .as_ref()
            .and_then(|k| k.lookup(addr.wrapping_add(self.kernel_slide)))
        {
            Some(name) => self.names.intern(name),
            None => self.names.intern(&format!("[k] {addr:#x}")),
        };
        self.kernel_ids.insert(addr, id);
        id
    }

    /// Appends the ids of a callchain's frames' names to `out` (see
    /// [`Symbolizer::frame_name`]), leaf first as perf records them, skipping the
    /// PERF_CONTEXT_* markers. Frames after the first are return addresses and are looked
    /// up one byte earlier, inside the call instruction, so that a call that ends a
    /// function (noreturn) resolves to the caller, not to what follows.
    pub fn frame_ids(&mut self, pid: u32, callchain: &[u64], out: &mut Vec<u32>) {
        let mut kernel = None;
        let mut first = true;
        for &ip in callchain {
            if ip >= PERF_CONTEXT_MAX {
                kernel = match ip {
                    PERF_CONTEXT_KERNEL => Some(true),
                    PERF_CONTEXT_USER => Some(false),
                    _ => kernel,
                };
                continue;
            }
            let lookup = if first { ip } else { ip.saturating_sub(1) };
            first = false;
            // Without frame pointers a user stack walk picks up stray words, a marker's
            // value among them: a "kernel" frame below kernel text is such garbage.
            let id = match kernel {
                Some(true) if ip < KERNEL_START => self.names.intern("[unknown]"),
                _ if kernel.unwrap_or(ip >= KERNEL_START) => self.kernel_frame_id(lookup),
                _ => self.user_frame_id(pid, lookup),
            };
            out.push(id);
        }
    }

    /// The name of a frame id [`Symbolizer::frame_ids`] gave.
    pub fn frame_name(&mut self, id: u32) -> &str {
        self.names().name(id)
    }

    /// The id of `name` among the frames' names: for the parts of a stack that are no
    /// frame (a container's label, a command name) to be compared as ids too.
    pub fn intern(&mut self, name: &str) -> u32 {
        self.names.intern(name)
    }

    /// The names the ids stand for. Kernel frames met while the table was being read (see
    /// [`Symbolizer::set_kallsyms_reading`]) are named now, each address on its own id:
    /// two ids may have one name, so a caller that merges stacks merges them by name.
    pub fn names(&mut self) -> &FrameNames {
        self.name_unnamed();
        &self.names
    }

    /// Takes the table being read and names the kernel addresses met before it was there.
    fn name_unnamed(&mut self) {
        self.kernel_ready();
        let slide = self.kernel_slide;
        for (id, addr) in std::mem::take(&mut self.kernel_unnamed) {
            let known = self
                .kernel
                .as_ref()
                .and_then(|k| k.lookup(addr.wrapping_add(slide)));
            match known {
                Some(name) => self.names.name_later(id, name),
                None => self.names.name_later(id, &format!("[k] {addr:#x}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Comm, TaskEvent};
    use std::borrow::Cow;

    #[inline(never)]
    #[no_mangle]
    pub extern "C" fn nswatch_symbols_test_marker() -> u64 {
        std::hint::black_box(42)
    }

    /// The executable mapping of `path` in this process, from /proc/self/maps.
    fn self_mapping(containing: u64) -> Mmap<'static> {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        for line in maps.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (a, b) = f[0].split_once('-').unwrap();
            let (start, end) = (
                u64::from_str_radix(a, 16).unwrap(),
                u64::from_str_radix(b, 16).unwrap(),
            );
            if (start..end).contains(&containing) {
                return Mmap {
                    pid: 7,
                    tid: 7,
                    addr: start,
                    len: end - start,
                    pgoff: u64::from_str_radix(f[2], 16).unwrap(),
                    prot: 5,
                    flags: 2,
                    filename: Cow::Owned(f[5].to_string()),
                    build_id: None,
                };
            }
        }
        panic!("{containing:#x} is not mapped");
    }

    #[inline(never)]
    fn rust_marker() -> u64 {
        std::hint::black_box(7)
    }

    #[test]
    fn of_aliases_at_one_address_the_one_perf_names_is_kept() {
        let b = |s: &str| -> Box<str> { s.into() };
        let names = |v: Vec<Alias>| -> Vec<String> {
            one_per_address(v)
                .into_iter()
                .map(|(a, _, n)| format!("{a:x} {n}"))
                .collect()
        };
        assert_eq!(
            names(vec![
                // Sized over unsized, whatever else.
                (0x10, 0, b("sized_not"), 0),
                (0x10, 8, b("__sized"), 2),
                // Not weak over weak, global over local.
                (0x20, 8, b("weak"), 2),
                (0x20, 8, b("local"), 1),
                (0x20, 8, b("__global"), 0),
                // Fewer leading underscores, then the longer name, demangled: the
                // generic whose demangled name is longest, though its mangled one is not.
                (0x30, 8, b("__memcpy"), 0),
                (0x30, 8, b("memcpy"), 0),
                (
                    0x40,
                    8,
                    b("_ZN5alloc7raw_vec6RawVec8grow_one17h0123456789abcdefE"),
                    1
                ),
                (
                    0x40,
                    8,
                    b("_ZN5alloc7raw_vec16RawVec$LT$u8$GT$8grow_one17h0123456789abcdefE"),
                    1
                ),
                (
                    0x40,
                    8,
                    b("_ZN5alloc7raw_vec6RawVec5short17h0123456789abcdefE"),
                    1
                ),
            ]),
            [
                "10 __sized",
                "20 __global",
                "30 memcpy",
                "40 _ZN5alloc7raw_vec16RawVec$LT$u8$GT$8grow_one17h0123456789abcdefE",
            ]
        );
    }

    #[test]
    fn rust_and_cpp_names_are_demangled_as_perf_prints_them() {
        // Legacy Rust: the hash goes; v0: the crate disambiguator goes.
        assert_eq!(
            demangle("_ZN7nswatch9perf_data17read_exact_or_eof17h6f1e2d3c4b5a6978E"),
            "nswatch::perf_data::read_exact_or_eof"
        );
        assert_eq!(
            demangle("_ZN4core3ptr85drop_in_place$LT$std..rt..lang_start$LT$$LP$$RP$$GT$..$u7b$$u7b$closure$u7d$$u7d$$GT$17h0123456789abcdefE"),
            "core::ptr::drop_in_place<std::rt::lang_start<()>::{{closure}}>"
        );
        assert_eq!(demangle("_RNvCs1234_7nswatch4main"), "nswatch::main");
        // C++ as perf prints it by default: without parameter and return types.
        assert_eq!(demangle("_ZN2ns1fEi"), "ns::f");
        assert_eq!(demangle("_Z4spinv"), "spin");
        assert_eq!(
            demangle("_ZNSt6vectorIiSaIiEE9push_backERKi"),
            "std::vector<int, std::allocator<int> >::push_back"
        );
        assert_eq!(demangle("_ZN2ns5KlassC2Ev"), "ns::Klass::Klass");
        assert_eq!(demangle("_Z3maxIiET_S0_S0_"), "max<int>");
        // A `_ZN…E` name whose last element is no hash is C++, not Rust.
        assert_eq!(demangle("_ZN3foo3barE"), "foo::bar");
        // C names, and what neither demangler reads, stay as they are.
        assert_eq!(demangle("main"), "main");
        assert_eq!(demangle("_Zgarbage"), "_Zgarbage");
        assert_eq!(demangle("_start"), "_start");
    }

    #[test]
    fn a_rust_function_of_this_test_binary_is_named_by_its_path() {
        let ip = rust_marker as *const () as u64 + 1;
        let mut s = Symbolizer::new();
        s.observe(&Record::Mmap(self_mapping(ip)));
        assert_eq!(s.user_frame(7, ip), "nswatch::symbols::tests::rust_marker");
    }

    #[test]
    fn a_function_of_this_test_binary_resolves_through_its_mapping() {
        let ip = nswatch_symbols_test_marker as *const () as u64 + 3;
        let mut s = Symbolizer::new();
        s.observe(&Record::Mmap(self_mapping(ip)));
        assert_eq!(s.user_frame(7, ip), "nswatch_symbols_test_marker");
        // Another process without that mapping knows nothing.
        assert_eq!(s.user_frame(8, ip), "[unknown]");
        // A forked process inherits its parent's mappings; a new mapping over them (exec's
        // image) replaces them; its exit drops them.
        let fork = TaskEvent {
            pid: 9,
            ppid: 7,
            tid: 9,
            ptid: 7,
            time: 0,
        };
        s.observe(&Record::Fork(fork));
        assert_eq!(s.user_frame(9, ip), "nswatch_symbols_test_marker");
        s.observe(&Record::Comm(Comm {
            pid: 9,
            tid: 9,
            comm: "x".into(),
            exec: true,
        }));
        assert_eq!(s.user_frame(9, ip), "nswatch_symbols_test_marker");
        let mut other = self_mapping(ip);
        other.pid = 9;
        other.filename = Cow::Borrowed("/nonexistent/exe");
        s.observe(&Record::Mmap(other));
        assert!(s.user_frame(9, ip).starts_with("exe+0x"));
        s.observe(&Record::Exit(fork));
        assert_eq!(s.user_frame(9, ip), "[unknown]");
        assert_eq!(s.user_frame(7, ip), "nswatch_symbols_test_marker");
    }

    #[test]
    fn a_shared_object_built_with_cc_resolves_with_pgoff_and_vaddr() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("lib.c");
        std::fs::write(
            &src,
            "int pad[4096] = {1};\n\
             __attribute__((noinline)) int nswatch_alpha(int x) { return x * 3 + pad[x]; }\n\
             __attribute__((noinline)) int nswatch_beta(int x) { return nswatch_alpha(x) + 1; }\n",
        )
        .unwrap();
        let so = dir.path().join("libt.so");
        let ok = std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-o"])
            .arg(&so)
            .arg(&src)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("skipped: no working cc");
            return;
        }
        let data = std::fs::read(&so).unwrap();
        let elf = ElfSymbols::parse(&data).unwrap();
        // Where the linker put the function, and the PT_LOAD holding it.
        let (vaddr, _, _) = elf
            .syms
            .iter()
            .find(|s| &*s.2 == "nswatch_beta")
            .cloned()
            .unwrap();
        let &(off, _, seg_vaddr) = elf
            .loads
            .iter()
            .find(|(o, sz, v)| vaddr >= *v && vaddr < v + sz && *o <= vaddr)
            .unwrap();
        // Map the executable segment as the loader would: at a page-aligned base, with the
        // segment's page-aligned file offset as pgoff.
        let pgoff = off & !0xfff;
        let base = 0x7f00_0000_0000u64;
        let map = Mmap {
            pid: 3,
            tid: 3,
            addr: base,
            len: 0x10_0000,
            pgoff,
            prot: 5,
            flags: 2,
            filename: Cow::Owned(so.to_str().unwrap().to_string()),
            build_id: None,
        };
        let mut s = Symbolizer::new();
        s.observe(&Record::Mmap(map));
        let ip = base + (vaddr - seg_vaddr + off - pgoff) + 2;
        assert_eq!(s.user_frame(3, ip), "nswatch_beta");
        // An address past every symbol but inside the mapping is named by file and offset.
        let name = s.user_frame(3, base + 0xf_fff0);
        assert!(name.starts_with("libt.so+0x"), "{name}");
        // A callchain: markers skipped, leaf first, return addresses looked up at -1.
        let mut out = Vec::new();
        s.frame_ids(3, &[PERF_CONTEXT_USER, ip, ip + 1, 0x10], &mut out);
        let names: Vec<String> = out.iter().map(|&id| s.frame_name(id).to_string()).collect();
        assert_eq!(names, ["nswatch_beta", "nswatch_beta", "[unknown]"]);
    }

    #[test]
    fn a_cpp_object_built_with_gxx_has_its_names_demangled() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("lib.cc");
        std::fs::write(
            &src,
            "namespace ns { struct Klass { int v; __attribute__((noinline)) int get(int x) const; };\n\
             int Klass::get(int x) const { return v + x; }\n\
             __attribute__((noinline)) long f(int x) { Klass k{x}; return k.get(x); } }\n",
        )
        .unwrap();
        let so = dir.path().join("libcxx.so");
        let ok = std::process::Command::new("g++")
            .args(["-shared", "-fPIC", "-O1", "-o"])
            .arg(&so)
            .arg(&src)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("skipped: no working g++ (the demangling itself is tested on strings)");
            return;
        }
        let elf = ElfSymbols::open(&so).unwrap();
        let names: Vec<&str> = elf.syms.iter().filter_map(|s| elf.lookup(s.0)).collect();
        assert!(names.contains(&"ns::f"), "{names:?}");
        assert!(names.contains(&"ns::Klass::get"), "{names:?}");
        assert!(!names.iter().any(|n| n.starts_with("_ZN2ns")), "{names:?}");
    }

    /// Builds a shared object defining `func` with cc; `None` without a working cc.
    fn cc_so(dir: &Path, name: &str, func: &str) -> Option<PathBuf> {
        let src = dir.join(format!("{name}.c"));
        std::fs::write(&src, format!("int {func}(int x) {{ return x * 7; }}\n")).unwrap();
        let so = dir.join(format!("{name}.so"));
        let ok = std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-Wl,--build-id", "-o"])
            .arg(&so)
            .arg(&src)
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(so)
    }

    /// An MMAP2 record mapping all of `path` executable at 0x7f0000000000 in `pid`.
    fn map_whole(pid: u32, path: &str, build_id: Option<BuildId>) -> Record<'static> {
        Record::Mmap(Mmap {
            pid,
            tid: pid,
            addr: 0x7f00_0000_0000,
            len: 0x10_0000,
            pgoff: 0,
            prot: 5,
            flags: 2,
            filename: Cow::Owned(path.to_string()),
            build_id,
        })
    }

    /// The address of `func` in the mapping [`map_whole`] makes.
    fn addr_of(elf: &ElfSymbols, func: &str) -> u64 {
        let v = elf.syms.iter().find(|s| &*s.2 == func).unwrap().0;
        let &(off, _, seg) = elf
            .loads
            .iter()
            .find(|(_, sz, s)| v >= *s && v < s + sz)
            .unwrap();
        0x7f00_0000_0000 + v - seg + off
    }

    #[test]
    fn a_file_whose_build_id_is_not_the_recordings_is_never_used_and_the_cache_is() {
        let dir = tempfile::tempdir().unwrap();
        let (Some(right), Some(wrong)) = (
            cc_so(dir.path(), "right", "right_func"),
            cc_so(dir.path(), "wrong", "wrong_func"),
        ) else {
            eprintln!("skipped: no working cc");
            return;
        };
        let right_elf = ElfSymbols::open(&right).unwrap();
        let wrong_elf = ElfSymbols::open(&wrong).unwrap();
        let id = right_elf.build_id().expect("linked with --build-id");
        assert_ne!(Some(id), wrong_elf.build_id());
        let ip = addr_of(&right_elf, "right_func");
        let path = wrong.to_str().unwrap();

        // No build-id known: the file at the path is used, as perf does.
        let mut s = Symbolizer::new();
        s.observe(&map_whole(1, path, None));
        assert!(s.user_frame(1, addr_of(&wrong_elf, "wrong_func")) == "wrong_func");

        // The recording's build-id is the other file's: the one at the path is refused,
        // said once, and the frame is named by file and offset.
        let mut s = Symbolizer::new();
        s.add_recorded_build_ids(&[(path.to_string(), id)]);
        s.observe(&map_whole(1, path, None));
        s.observe(&map_whole(2, path, None));
        let name = s.user_frame(1, ip);
        assert!(name.starts_with("wrong.so+0x"), "{name}");
        assert!(s.user_frame(2, ip).starts_with("wrong.so+0x"));
        assert_eq!(s.notes().len(), 1, "{:?}", s.notes());
        assert!(s.notes()[0].contains(&id.to_string()), "{:?}", s.notes());
        // MMAP2's own build-id says the same.
        let mut s = Symbolizer::new();
        s.observe(&map_whole(1, path, Some(id)));
        assert!(s.user_frame(1, ip).starts_with("wrong.so+0x"));

        // perf's cache holds the right file, as perf lays it out: named from there.
        let cache = dir.path().join("cache");
        let hex = id.to_string();
        let entry = cache.join("opt/app/lib.so").join(&hex);
        std::fs::create_dir_all(&entry).unwrap();
        std::fs::copy(&right, entry.join("elf")).unwrap();
        std::fs::create_dir_all(cache.join(".build-id").join(&hex[..2])).unwrap();
        std::os::unix::fs::symlink(
            format!("../../opt/app/lib.so/{hex}"),
            cache.join(".build-id").join(&hex[..2]).join(&hex[2..]),
        )
        .unwrap();
        let mut s = Symbolizer::new();
        s.set_build_id_cache(vec![cache]);
        s.add_recorded_build_ids(&[(path.to_string(), id)]);
        s.observe(&map_whole(1, path, None));
        assert_eq!(s.user_frame(1, ip), "right_func");
        assert!(s.notes().is_empty());
        // Another process mapping the same build-id at another path reuses the table.
        s.observe(&map_whole(3, "/gone/elsewhere.so", Some(id)));
        assert_eq!(s.user_frame(3, ip), "right_func");
        assert_eq!(s.by_id.len(), 1);
    }

    #[test]
    fn a_live_process_is_read_through_its_maps_and_root() {
        // A profiler may keep it on a thread of its own.
        fn send<T: Send>() {}
        send::<Symbolizer>();
        let ip = rust_marker as *const () as u64 + 1;
        let mut s = Symbolizer::live();
        let me = std::process::id();
        assert_eq!(s.symbolize(me, ip), "nswatch::symbols::tests::rust_marker");
        // Through /proc/self/map_files or /proc/PID/root, and cached by build-id.
        assert_eq!(s.by_id.len(), 1, "{:?}", s.notes());
        s.forget(me);
        assert_eq!(s.symbolize(me, ip), "nswatch::symbols::tests::rust_marker");
        assert_eq!(s.by_id.len(), 1);
        assert_eq!(s.symbolize(u32::MAX - 1, ip), "[unknown]");
    }

    #[test]
    fn kallsyms_are_parsed_and_slid_by_the_recorded_text() {
        let table = "ffffffff81000000 T _text\n\
                     ffffffff81000100 T do_syscall_64\n\
                     ffffffff81000200 t helper\t[mod]\n\
                     ffffffff81000300 D some_data\n\
                     0000000000000000 T zeroed\n\
                     ffffffff81000400 T memcpy\n\
                     ffffffff81000400 T __pi_memcpy\n";
        let k = Kallsyms::parse(table);
        assert_eq!(k.len(), 5);
        assert_eq!(k.lookup(0xffffffff81000404), Some("__pi_memcpy"));
        let mut s = Symbolizer::new();
        s.set_kallsyms(k);
        assert_eq!(s.kernel_frame(0xffffffff81000150), "do_syscall_64");
        assert_eq!(s.kernel_frame(0xffffffff81000250), "helper");
        // A recording made when the kernel sat 0x200000 higher.
        let kernel_map = Mmap {
            pid: u32::MAX,
            tid: 0,
            addr: 0xffffffff81200000,
            len: 0x100000,
            pgoff: 0xffffffff81200000,
            prot: 0,
            flags: 0,
            filename: Cow::Borrowed("[kernel.kallsyms]_text"),
            build_id: None,
        };
        s.observe(&Record::Mmap(kernel_map.clone()));
        assert_eq!(s.kernel_frame(0xffffffff81200150), "do_syscall_64");
        let names = |s: &mut Symbolizer, chain: &[u64]| {
            let mut ids = Vec::new();
            s.frame_ids(1, chain, &mut ids);
            ids.iter()
                .map(|&id| s.frame_name(id).to_string())
                .collect::<Vec<_>>()
        };
        // A return address at the very start of do_syscall_64 belongs to what precedes it.
        let chain = [PERF_CONTEXT_KERNEL, 0xffffffff81200100, 0xffffffff81200100];
        assert_eq!(names(&mut s, &chain), ["do_syscall_64", "_text"]);
        // A stray word equal to PERF_CONTEXT_KERNEL in a user stack walk does not make the
        // user addresses after it kernel frames.
        let stray = [PERF_CONTEXT_USER, 0x5000, PERF_CONTEXT_KERNEL, 0x5008];
        assert_eq!(names(&mut s, &stray), ["[unknown]", "[unknown]"]);

        // The table read on another thread, arriving after the recording's kernel map: the
        // same names, slid the same way.
        let mut later = Symbolizer::new();
        later.observe(&Record::Mmap(kernel_map.clone()));
        later.set_kallsyms_reading(std::thread::spawn(move || Some(Kallsyms::parse(table))));
        assert_eq!(names(&mut later, &chain), ["do_syscall_64", "_text"]);
        assert!(later.has_kernel());
        assert!(!recorded_here(None, None));
        let none = Symbolizer::new();
        assert_eq!(
            none.kernel_frame(0xffffffff81000150),
            "[k] 0xffffffff81000150"
        );
    }
}
