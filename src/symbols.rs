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

use crate::record::{Mmap, Record};
use hashbrown::HashMap;
use std::borrow::Cow;
use std::rc::Rc;

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

/// Symbols of one ELF file, addresses in the file's own (link-time) address space.
#[derive(Debug, Default)]
pub struct ElfSymbols {
    /// PT_LOAD segments: (file offset, file size, virtual address).
    loads: Vec<(u64, u64, u64)>,
    /// Function symbols sorted by start: (start, size, name).
    syms: Vec<(u64, u64, Box<str>)>,
}

impl ElfSymbols {
    /// Reads the function symbols of an ELF image: .symtab, else .dynsym (stripped files
    /// keep only the latter). `None` when `data` is not an object file `object` reads.
    pub fn parse(data: &[u8]) -> Option<ElfSymbols> {
        use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};
        let file = object::File::parse(data).ok()?;
        let loads = file
            .segments()
            .map(|s| {
                let (off, size) = s.file_range();
                (off, size, s.address())
            })
            .collect();
        fn take<'d, S: ObjectSymbol<'d>>(it: impl Iterator<Item = S>) -> Vec<(u64, u64, Box<str>)> {
            it.filter(|s| s.kind() == SymbolKind::Text && s.is_definition() && s.address() != 0)
                .filter_map(|s| Some((s.address(), s.size(), demangle(s.name().ok()?).into())))
                .collect()
        }
        let mut syms = take(file.symbols());
        if syms.is_empty() {
            syms = take(file.dynamic_symbols());
        }
        // Sized symbols first at one address, so aliases resolve to one that has a size.
        syms.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        syms.dedup_by_key(|s| s.0);
        Some(ElfSymbols { loads, syms })
    }

    /// Reads and parses the file at `path`.
    pub fn open(path: &std::path::Path) -> Option<ElfSymbols> {
        let file = std::fs::File::open(path).ok()?;
        // SAFETY: read-only private map, dropped before return; a file truncated meanwhile
        // would fault, as it would for perf.
        let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
        ElfSymbols::parse(&map)
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
        (vaddr < end).then_some(&**name)
    }
}

/// The kernel's symbols, from /proc/kallsyms (modules included).
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
        syms.sort_unstable_by_key(|s| s.0);
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
    file: Rc<str>,
}

/// Resolves callchain addresses to names, following the mappings of every process.
#[derive(Debug, Default)]
pub struct Symbolizer {
    kernel: Option<Kallsyms>,
    /// Added to a recorded kernel address to find it in today's kallsyms (KASLR moves the
    /// kernel at each boot; the recording's `_text` is in its kernel MMAP record).
    kernel_slide: u64,
    /// `_text` of the running kernel, to compute the slide.
    kernel_text: Option<u64>,
    maps: HashMap<u32, Vec<Mapping>>,
    elfs: HashMap<Rc<str>, Option<Rc<ElfSymbols>>>,
    /// Prefix for file lookups (a root directory the recording's paths are relative to).
    root: Option<std::path::PathBuf>,
}

/// The last path component, for `module+0xoff` frames.
fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

impl Symbolizer {
    /// A symbolizer without kernel symbols; user frames are read from the files MMAP
    /// records name.
    pub fn new() -> Symbolizer {
        Symbolizer::default()
    }

    /// Uses `kallsyms` for kernel frames. Only sound when the recording was made by the
    /// running kernel: the caller checks the file's host name and kernel release.
    pub fn set_kallsyms(&mut self, kallsyms: Kallsyms) {
        self.kernel_text = kallsyms.address_of("_text");
        self.kernel = Some(kallsyms);
    }

    /// True when kernel frames are symbolized.
    pub fn has_kernel(&self) -> bool {
        self.kernel.is_some()
    }

    /// Looks files up under `root` instead of `/` (a copy of the recording machine's files).
    pub fn set_root(&mut self, root: impl Into<std::path::PathBuf>) {
        self.root = Some(root.into());
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
            Record::Exit(t) if t.pid == t.tid => {
                self.maps.remove(&t.pid);
            }
            _ => {}
        }
    }

    fn add_mapping(&mut self, m: &Mmap<'_>) {
        if m.pid == u32::MAX {
            // perf's kernel map: its pgoff is where the recording kernel's `_text` was.
            if m.filename.starts_with("[kernel.kallsyms]") && m.pgoff != 0 {
                if let Some(now) = self.kernel_text {
                    self.kernel_slide = now.wrapping_sub(m.pgoff);
                }
            }
            return;
        }
        const PROT_EXEC: u32 = 4;
        if m.prot != 0 && m.prot & PROT_EXEC == 0 {
            return;
        }
        let end = m.addr.saturating_add(m.len);
        let list = self.maps.entry(m.pid).or_default();
        // A new mapping replaces whatever it overlaps (mmap MAP_FIXED over an old one).
        list.retain(|x| x.end <= m.addr || x.start >= end);
        let file: Rc<str> = match self.elfs.get_key_value(&*m.filename) {
            Some((k, _)) => k.clone(),
            None => m.filename.as_ref().into(),
        };
        let at = list.partition_point(|x| x.start < m.addr);
        list.insert(
            at,
            Mapping {
                start: m.addr,
                end,
                pgoff: m.pgoff,
                file,
            },
        );
    }

    fn elf(&mut self, file: &Rc<str>) -> Option<Rc<ElfSymbols>> {
        if let Some(e) = self.elfs.get(file) {
            return e.clone();
        }
        // perf's pseudo-files ([vdso], [heap], //anon, memfd) have no file to read.
        let e = if file.starts_with('/') && !file.ends_with(" (deleted)") {
            let path = match &self.root {
                Some(r) => r.join(file.trim_start_matches('/')),
                None => std::path::PathBuf::from(&**file),
            };
            ElfSymbols::open(&path).map(Rc::new)
        } else {
            None
        };
        self.elfs.insert(file.clone(), e.clone());
        e
    }

    /// The name of user address `addr` in process `pid`: the function, else
    /// `file+0xVADDR`, else `[unknown]`.
    pub fn user_frame(&mut self, pid: u32, addr: u64) -> String {
        let Some(m) = self.maps.get(&pid).and_then(|l| {
            let i = l.partition_point(|x| x.start <= addr).checked_sub(1)?;
            let m = &l[i];
            (addr < m.end).then(|| m.clone())
        }) else {
            return "[unknown]".to_string();
        };
        let off = addr - m.start + m.pgoff;
        let elf = self.elf(&m.file);
        let vaddr = elf.as_ref().and_then(|e| e.vaddr_of_offset(off));
        if let (Some(e), Some(v)) = (&elf, vaddr) {
            if let Some(name) = e.lookup(v) {
                return name.to_string();
            }
        }
        format!("{}+{:#x}", basename(&m.file), vaddr.unwrap_or(off))
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

    /// Appends the names of a callchain's frames to `out`, leaf first as perf records
    /// them, skipping the PERF_CONTEXT_* markers. Frames after the first are return
    /// addresses and are looked up one byte earlier, inside the call instruction, so that
    /// a call that ends a function (noreturn) resolves to the caller, not to what follows.
    pub fn frames(&mut self, pid: u32, callchain: &[u64], out: &mut Vec<String>) {
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
            let name = match kernel {
                Some(true) if ip < KERNEL_START => "[unknown]".to_string(),
                _ if kernel.unwrap_or(ip >= KERNEL_START) => self.kernel_frame(lookup),
                _ => self.user_frame(pid, lookup),
            };
            out.push(name);
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
        s.frames(3, &[PERF_CONTEXT_USER, ip, ip + 1, 0x10], &mut out);
        assert_eq!(out, ["nswatch_beta", "nswatch_beta", "[unknown]"]);
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
        let names: Vec<&str> = elf.syms.iter().map(|s| &*s.2).collect();
        assert!(names.contains(&"ns::f"), "{names:?}");
        assert!(names.contains(&"ns::Klass::get"), "{names:?}");
        assert!(!names.iter().any(|n| n.starts_with("_ZN2ns")), "{names:?}");
    }

    #[test]
    fn kallsyms_are_parsed_and_slid_by_the_recorded_text() {
        let k = Kallsyms::parse(
            "ffffffff81000000 T _text\n\
             ffffffff81000100 T do_syscall_64\n\
             ffffffff81000200 t helper\t[mod]\n\
             ffffffff81000300 D some_data\n\
             0000000000000000 T zeroed\n",
        );
        assert_eq!(k.len(), 3);
        let mut s = Symbolizer::new();
        s.set_kallsyms(k);
        assert_eq!(s.kernel_frame(0xffffffff81000150), "do_syscall_64");
        assert_eq!(s.kernel_frame(0xffffffff81000250), "helper");
        // A recording made when the kernel sat 0x200000 higher.
        s.observe(&Record::Mmap(Mmap {
            pid: u32::MAX,
            tid: 0,
            addr: 0xffffffff81200000,
            len: 0x100000,
            pgoff: 0xffffffff81200000,
            prot: 0,
            flags: 0,
            filename: Cow::Borrowed("[kernel.kallsyms]_text"),
        }));
        assert_eq!(s.kernel_frame(0xffffffff81200150), "do_syscall_64");
        let mut out = Vec::new();
        s.frames(
            1,
            &[PERF_CONTEXT_KERNEL, 0xffffffff81200100, 0xffffffff81200100],
            &mut out,
        );
        // A return address at the very start of do_syscall_64 belongs to what precedes it.
        assert_eq!(out, ["do_syscall_64", "_text"]);
        // A stray word equal to PERF_CONTEXT_KERNEL in a user stack walk does not make the
        // user addresses after it kernel frames.
        out.clear();
        s.frames(
            1,
            &[PERF_CONTEXT_USER, 0x5000, PERF_CONTEXT_KERNEL, 0x5008],
            &mut out,
        );
        assert_eq!(out, ["[unknown]", "[unknown]"]);
        assert!(!recorded_here(None, None));
        let none = Symbolizer::new();
        assert_eq!(
            none.kernel_frame(0xffffffff81000150),
            "[k] 0xffffffff81000150"
        );
    }
}
