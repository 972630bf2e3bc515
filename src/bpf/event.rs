//! One record of the eBPF probe: a setns/unshare/clone/clone3/fork/vfork call (or an exec that
//! entered a time namespace) seen on entry and exit, decoded from the ring buffer's bytes
//! into the schema's [`Cause`] (`crate::event::cause`, which writes it as the "cause" fields).
//!
//! The layout is `struct nsw_event` of bpf/nswatch.bpf.c: change both together.

pub use crate::event::cause::{
    errno_name, flag_names, ns_type_name, Cause, CauseCache, NsIds, Syscall, Target, SLOT_NAMES,
};

/// Size of one record in the ring buffer.
pub const RECORD_SIZE: usize = 216;

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadRecord {
    /// Shorter than [`RECORD_SIZE`].
    #[error("eBPF record of {0} bytes, {RECORD_SIZE} expected")]
    Short(usize),
    /// A syscall code the program does not write.
    #[error("eBPF record with unknown syscall code {0}")]
    Syscall(u32),
}

// Reads from a record of known size at constant offsets: once inlined, no bounds check is
// left (on a slice, each of the ~40 reads of a record checked and could panic).
#[inline(always)]
fn u32_at(b: &[u8; RECORD_SIZE], off: usize) -> u32 {
    u32::from_ne_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}
#[inline(always)]
fn u64_at(b: &[u8; RECORD_SIZE], off: usize) -> u64 {
    u64::from_ne_bytes(b[off..off + 8].try_into().expect("8 bytes"))
}
#[inline(always)]
fn ids_at(b: &[u8; RECORD_SIZE], off: usize) -> NsIds {
    std::array::from_fn(|i| u32_at(b, off + 4 * i))
}

const ST_CLONE3_ARGS_UNREAD: u32 = 1;
const ST_TARGET_GONE: u32 = 4;

impl Cause {
    /// Decodes one ring buffer record; `dev` is the nsfs device number.
    pub fn parse(b: &[u8], dev: u64) -> Result<Cause, BadRecord> {
        let mut c = Cause::blank();
        c.parse_into(b, dev)?;
        Ok(c)
    }

    /// Decodes one ring buffer record into `self`, in place: the command name reuses the
    /// string's storage, so that a recycled cause costs no allocation. On error `self` is
    /// left as it was.
    pub fn parse_into(&mut self, b: &[u8], dev: u64) -> Result<(), BadRecord> {
        let Some(b) = b.first_chunk::<RECORD_SIZE>() else {
            return Err(BadRecord::Short(b.len()));
        };
        let syscall = match u32_at(b, 40) {
            1 => Syscall::Setns,
            2 => Syscall::Unshare,
            3 => Syscall::Clone,
            4 => Syscall::Clone3,
            5 => Syscall::Fork,
            6 => Syscall::Vfork,
            7 => Syscall::Execve,
            8 => Syscall::Execveat,
            n => return Err(BadRecord::Syscall(n)),
        };
        let status = u32_at(b, 68);
        let fd = u32_at(b, 44) as i32;
        self.target = (syscall == Syscall::Setns).then(|| {
            let t = match u32_at(b, 48) {
                2 => Target::Nsfs {
                    ns_type: u32_at(b, 52),
                    ino: u32_at(b, 56),
                },
                3 => Target::Pidfd {
                    pid: u32_at(b, 60),
                    ns: (status & ST_TARGET_GONE == 0).then(|| ids_at(b, 152)),
                },
                1 => Target::Closed,
                _ => Target::Other,
            };
            (fd, t)
        });
        let comm = &b[192..208];
        let comm = &comm[..comm.iter().position(|&c| c == 0).unwrap_or(comm.len())];
        // A recycled cause usually held the same command (a storm of one program's calls).
        if self.comm.as_bytes() != comm {
            self.comm.clear();
            match std::str::from_utf8(comm) {
                Ok(text) => self.comm.push_str(text),
                Err(_) => self.comm.push_str(&String::from_utf8_lossy(comm)),
            }
        }
        self.syscall = syscall;
        self.flags = u64_at(b, 24);
        self.ret = u64_at(b, 16) as i64;
        self.enter_ns = u64_at(b, 0);
        self.exit_ns = u64_at(b, 8);
        self.pid = u32_at(b, 32);
        self.tid = u32_at(b, 36);
        self.cpu = u32_at(b, 64);
        self.before = ids_at(b, 72);
        self.after = ids_at(b, 112);
        self.child_tid = None;
        self.dev = dev;
        self.flags_unread = status & ST_CLONE3_ARGS_UNREAD != 0;
        self.cgroup = u64_at(b, 208);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as the BPF program lays it out.
    fn record(syscall: u32, kind: u32, ret: i64, flags: u64) -> Vec<u8> {
        let mut b = vec![0u8; RECORD_SIZE];
        b[0..8].copy_from_slice(&100u64.to_ne_bytes());
        b[8..16].copy_from_slice(&200u64.to_ne_bytes());
        b[16..24].copy_from_slice(&ret.to_ne_bytes());
        b[24..32].copy_from_slice(&flags.to_ne_bytes());
        b[32..36].copy_from_slice(&7u32.to_ne_bytes());
        b[36..40].copy_from_slice(&8u32.to_ne_bytes());
        b[40..44].copy_from_slice(&syscall.to_ne_bytes());
        b[44..48].copy_from_slice(&5i32.to_ne_bytes());
        b[48..52].copy_from_slice(&kind.to_ne_bytes());
        b[52..56].copy_from_slice(&(libc::CLONE_NEWNET as u32).to_ne_bytes());
        b[56..60].copy_from_slice(&4026532000u32.to_ne_bytes());
        b[60..64].copy_from_slice(&1234u32.to_ne_bytes());
        for i in 0..10 {
            b[72 + 4 * i..76 + 4 * i].copy_from_slice(&(1000 + i as u32).to_ne_bytes());
            b[112 + 4 * i..116 + 4 * i].copy_from_slice(&(2000 + i as u32).to_ne_bytes());
            b[152 + 4 * i..156 + 4 * i].copy_from_slice(&(3000 + i as u32).to_ne_bytes());
        }
        b[192..197].copy_from_slice(b"setns");
        b
    }

    #[test]
    fn a_recycled_cause_is_overwritten_whole() {
        // A pidfd clone3 that failed, then a nsfs setns parsed into the same storage: nothing
        // of the first may remain, and a failed parse leaves the cause as it was.
        let mut first = record(4, 3, -1, 0x7);
        first[68..72].copy_from_slice(&1u32.to_ne_bytes());
        first[192..208].copy_from_slice(b"0123456789abcdef");
        let mut c = Cause::parse(&first, 4).unwrap();
        c.child_tid = Some(99);
        assert!(c.flags_unread);
        let fresh = Cause::parse(&record(1, 2, 0, 0), 9).unwrap();
        c.parse_into(&record(1, 2, 0, 0), 9).unwrap();
        assert_eq!(c, fresh);
        assert_eq!(
            c.parse_into(&record(77, 2, 0, 0), 9),
            Err(BadRecord::Syscall(77))
        );
        assert_eq!(c, fresh);
        let mut bad = record(1, 2, 0, 0);
        bad[192..195].copy_from_slice(&[0xff, b'x', 0]);
        c.parse_into(&bad, 9).unwrap();
        assert_eq!(c.comm, "\u{fffd}x");
    }

    fn json(c: &Cause) -> serde_json::Value {
        let mut out = b"{".to_vec();
        c.write_fields(&mut out, None);
        out.push(b'}');
        serde_json::from_slice(&out).unwrap()
    }

    /// The writer before it wrote numbers itself: every field through `format!`.
    fn reference_fields(c: &Cause, out: &mut Vec<u8>) {
        let ids = |ids: &NsIds, out: &mut Vec<u8>| {
            let parts: Vec<String> = SLOT_NAMES
                .iter()
                .zip(ids)
                .filter(|(_, ino)| **ino != 0)
                .map(|(name, ino)| format!("\"{name}\":{{\"dev\":{},\"ino\":{ino}}}", c.dev))
                .collect();
            out.extend_from_slice(format!("{{{}}}", parts.join(",")).as_bytes());
        };
        let mut s = format!(
            "\"syscall\":\"{}\",\"flags\":\"{}\"",
            c.syscall.name(),
            flag_names(c.syscall, c.flags)
        );
        if c.flags_unread {
            s += ",\"flags_unread\":true";
        }
        out.extend_from_slice(s.as_bytes());
        if let Some((fd, t)) = &c.target {
            out.extend_from_slice(format!(",\"fd\":{fd},\"target\":").as_bytes());
            match t {
                Target::Closed => out.extend_from_slice(b"{\"kind\":\"closed\"}"),
                Target::Other => out.extend_from_slice(b"{\"kind\":\"other\"}"),
                Target::Nsfs { ns_type, ino } => out.extend_from_slice(
                    format!(
                        "{{\"kind\":\"nsfs\",\"type\":\"{}\",\"dev\":{},\"ino\":{ino}}}",
                        ns_type_name(*ns_type),
                        c.dev
                    )
                    .as_bytes(),
                ),
                Target::Pidfd { pid, ns } => {
                    out.extend_from_slice(format!("{{\"kind\":\"pidfd\",\"pid\":{pid}").as_bytes());
                    if let Some(ns) = ns {
                        out.extend_from_slice(b",\"ns\":");
                        ids(ns, out);
                    }
                    out.push(b'}');
                }
            }
        }
        out.extend_from_slice(format!(",\"ok\":{},\"ret\":{}", c.ok(), c.ret).as_bytes());
        if !c.ok() {
            out.extend_from_slice(format!(",\"errno\":\"{}\"", errno_name(-c.ret)).as_bytes());
        }
        if let Some(t) = c.child_tid {
            out.extend_from_slice(format!(",\"child_tid\":{t}").as_bytes());
        }
        out.extend_from_slice(
            format!(",\"enter_ns\":{},\"exit_ns\":{}", c.enter_ns, c.exit_ns).as_bytes(),
        );
        out.extend_from_slice(b",\"before\":");
        ids(&c.before, out);
        out.extend_from_slice(b",\"after\":");
        ids(&c.after, out);
    }

    #[test]
    fn the_fields_are_the_bytes_format_wrote() {
        let mut n = 0;
        let mut cache = CauseCache::default();
        for syscall in 1..=6 {
            for kind in 0..=4 {
                for ret in [0, 1234, -1, -22, -9, -512, -4095, i64::MIN + 1] {
                    for flags in [
                        0,
                        17,
                        0x7e02_0000 | 17,
                        0x80,
                        0x4_0000_0000,
                        0x3_0000_0000,
                        u64::MAX,
                    ] {
                        for (status, dev) in [(0u32, 4), (1, 0), (2, u64::MAX), (3, 1 << 40)] {
                            let mut b = record(syscall, kind, ret, flags);
                            b[68..72].copy_from_slice(&status.to_ne_bytes());
                            b[44..48].copy_from_slice(&(ret as i32).to_ne_bytes());
                            b[52..56].copy_from_slice(&(flags as u32).to_ne_bytes());
                            b[56..60].copy_from_slice(&(u32::MAX - kind).to_ne_bytes());
                            b[76..80].copy_from_slice(&0u32.to_ne_bytes());
                            b[112..116].copy_from_slice(&u32::MAX.to_ne_bytes());
                            let mut c = Cause::parse(&b, dev).unwrap();
                            c.child_tid = (ret > 0).then_some(ret as u32);
                            c.exit_ns = u64::MAX - ret.unsigned_abs();
                            let (mut fast, mut slow) = (b"x".to_vec(), b"x".to_vec());
                            let mut cached = b"x".to_vec();
                            c.write_fields(&mut fast, None);
                            c.write_fields(&mut cached, Some(&mut cache));
                            reference_fields(&c, &mut slow);
                            let slow = String::from_utf8(slow).unwrap();
                            assert_eq!(String::from_utf8(fast).unwrap(), slow);
                            assert_eq!(String::from_utf8(cached).unwrap(), slow);
                            n += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(n, 6 * 5 * 8 * 7 * 4);
    }

    #[test]
    fn nsfs_setns_decodes_and_writes() {
        let c = Cause::parse(&record(1, 2, 0, libc::CLONE_NEWNET as u64), 4).unwrap();
        assert_eq!(c.syscall, Syscall::Setns);
        assert_eq!((c.pid, c.tid, c.enter_ns, c.exit_ns), (7, 8, 100, 200));
        assert_eq!(c.comm, "setns");
        let v = json(&c);
        assert_eq!(v["flags"], "CLONE_NEWNET");
        assert_eq!(v["fd"], 5);
        assert_eq!(v["target"]["kind"], "nsfs");
        assert_eq!(v["target"]["type"], "net");
        assert_eq!(v["target"]["dev"], 4);
        assert_eq!(v["target"]["ino"], 4026532000u64);
        assert_eq!(v["ok"], true);
        assert!(v.get("errno").is_none());
        assert_eq!(v["before"]["time_for_children"]["ino"], 1009);
        assert_eq!(v["after"]["net"]["ino"], 2000);
    }

    #[test]
    fn failures_pidfds_and_bad_records() {
        let c = Cause::parse(&record(1, 3, -(libc::EINVAL as i64), 0x4c000000), 4).unwrap();
        let v = json(&c);
        assert_eq!(v["ok"], false);
        assert_eq!(v["errno"], "EINVAL");
        assert_eq!(v["flags"], "CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWNET");
        assert_eq!(v["target"]["pid"], 1234);
        assert_eq!(v["target"]["ns"]["net"]["ino"], 3000);
        let closed = Cause::parse(&record(1, 1, -(libc::EBADF as i64), 0), 4).unwrap();
        assert_eq!(json(&closed)["target"]["kind"], "closed");
        assert_eq!(json(&closed)["errno"], "EBADF");
        assert_eq!(json(&closed)["flags"], "0");
        let unshare = Cause::parse(&record(2, 0, 0, 0x80 | 0x20000000), 4).unwrap();
        assert!(unshare.target.is_none());
        assert_eq!(json(&unshare)["flags"], "CLONE_NEWTIME|CLONE_NEWPID");
        assert_eq!(
            Cause::parse(&[0; 10], 4),
            Err(BadRecord::Short(10)),
            "short"
        );
        assert_eq!(
            Cause::parse(&record(9, 0, 0, 0), 4),
            Err(BadRecord::Syscall(9))
        );
    }

    #[test]
    fn causes_read_back_from_their_json() {
        let mut causes = vec![
            Cause::parse(&record(1, 2, 0, libc::CLONE_NEWNET as u64), 4).unwrap(),
            Cause::parse(&record(2, 0, -22, 0x4000_0000 | 0x0400_0000), 4).unwrap(),
            Cause::parse(&record(3, 0, 1234, 0x2002_0000 | 17), 4).unwrap(),
            Cause::parse(&record(4, 0, -1, 0x80 | 0x4_0000_0000), 4).unwrap(),
        ];
        causes[2].child_tid = Some(77);
        causes.push(Cause {
            target: Some((
                5,
                Target::Pidfd {
                    pid: 99,
                    ns: Some([7; 10]),
                },
            )),
            ..causes[0].clone()
        });
        causes.push(Cause {
            target: Some((6, Target::Closed)),
            ..causes[0].clone()
        });
        for c in causes {
            let back = Cause::from_json(&json(&c), c.pid, c.tid, c.cpu, &c.comm).unwrap();
            assert_eq!(back, c);
        }
    }

    #[test]
    fn every_syscall_reads_back_from_its_name() {
        for code in 1..=8u32 {
            let mut b = [0u8; RECORD_SIZE];
            b[40..44].copy_from_slice(&code.to_le_bytes());
            let mut c = Cause::blank();
            c.parse_into(&b, 4).unwrap();
            assert_eq!(Syscall::from_name(c.syscall.name()), Some(c.syscall));
            let mut o = b"{".to_vec();
            c.write_fields(&mut o, None);
            o.push(b'}');
            let v: serde_json::Value = serde_json::from_slice(&o).unwrap();
            let back = Cause::from_json(&v, 1, 1, 0, "t").unwrap();
            assert_eq!(back.syscall, c.syscall);
        }
        assert_eq!(Syscall::from_name("exit"), None);
    }
}
