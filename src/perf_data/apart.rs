//! Keeps the two threads of a split read ([`super::split`]) on different CPUs.
//!
//! They hand batches to each other, each sleeping while the other fills or drains the
//! channel, so the run queue rarely holds both at once and the scheduler's balancing sees
//! no reason to part them once a wakeup put them on one CPU. There they take turns: a
//! setns storm's read then waits 4–6 ms in all, against none apart, in a third of the runs
//! on a 2-CPU VM (PERFORMANCE.md). Pinning each to a CPU of its own prevents that but
//! holds a thread on a CPU that something else keeps busy (a read 65% slower beside a test
//! suite). So the consumer only steps off the reader's CPU when it finds itself there,
//! between batches: its allowed CPUs without the reader's for a moment (which moves it at
//! once), then all of them again, and the scheduler places it from there as it will.

use std::sync::atomic::{AtomicUsize, Ordering};

/// What the reading thread tells the consumer: the CPU it last ran on.
#[derive(Debug)]
pub(super) struct ReaderCpu(AtomicUsize);

impl ReaderCpu {
    pub(super) fn new() -> Self {
        ReaderCpu(AtomicUsize::new(usize::MAX))
    }

    /// Notes the calling thread's CPU (at each batch sent), and gives it.
    pub(super) fn note(&self) -> Option<usize> {
        let cpu = this_cpu()?;
        self.0.store(cpu, Ordering::Relaxed);
        Some(cpu)
    }

    fn get(&self) -> Option<usize> {
        Some(self.0.load(Ordering::Relaxed)).filter(|&c| c != usize::MAX)
    }
}

/// The consumer's side: the CPUs it may run on, when there are two or more.
pub(super) struct Apart {
    allowed: libc::cpu_set_t,
}

impl Apart {
    /// For the calling thread; `None` when it may run on one CPU only (or its mask cannot
    /// be read), where there is nothing to do.
    pub(super) fn new() -> Option<Apart> {
        // SAFETY: a zeroed cpu_set_t is an empty set; the kernel fills it.
        let mut allowed: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: a valid pointer to a set of the size given.
        let r =
            unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&allowed), &mut allowed) };
        // SAFETY: reads the set.
        (r == 0 && unsafe { libc::CPU_COUNT(&allowed) } >= 2).then_some(Apart { allowed })
    }

    /// Between two batches: steps off the reader's CPU if this thread is on it; gives the
    /// CPU it stepped to. Failures (a mask the kernel refuses) leave the thread where it
    /// is.
    pub(super) fn keep_off(&self, reader: &ReaderCpu) -> Option<usize> {
        let r = reader.get()?;
        if this_cpu()? != r || r >= libc::CPU_SETSIZE as usize {
            return None;
        }
        let mut others = self.allowed;
        // SAFETY: r is within the set's size (checked above).
        unsafe { libc::CPU_CLR(r, &mut others) };
        // SAFETY: valid sets of the size given, for the calling thread (0).
        unsafe {
            if libc::sched_setaffinity(0, std::mem::size_of_val(&others), &others) != 0 {
                return None;
            }
            let to = this_cpu();
            libc::sched_setaffinity(0, std::mem::size_of_val(&self.allowed), &self.allowed);
            to
        }
    }
}

fn this_cpu() -> Option<usize> {
    // SAFETY: no arguments; -1 on error.
    usize::try_from(unsafe { libc::sched_getcpu() }).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mask() -> libc::cpu_set_t {
        // SAFETY: as in `Apart::new`.
        unsafe {
            let mut m: libc::cpu_set_t = std::mem::zeroed();
            assert_eq!(
                libc::sched_getaffinity(0, std::mem::size_of_val(&m), &mut m),
                0
            );
            m
        }
    }

    #[test]
    fn the_consumer_steps_off_the_readers_cpu_and_keeps_its_mask() {
        std::thread::spawn(|| {
            let Some(apart) = Apart::new() else {
                println!("SKIP: this thread may run on one CPU only");
                return;
            };
            let before = mask();
            let reader = ReaderCpu::new();
            // No CPU noted yet: nothing to do.
            assert_eq!(apart.keep_off(&reader), None);
            // The thread may move between the note and the look (then nothing is done):
            // a few tries.
            let (noted, to) = (0..100)
                .find_map(|_| {
                    let noted = reader.note()?;
                    Some((noted, apart.keep_off(&reader)?))
                })
                .expect("never found on the CPU just noted");
            // The move is made before sched_setaffinity returns.
            assert_ne!(noted, to);
            // SAFETY: compares two sets.
            assert!(
                unsafe { libc::CPU_EQUAL(&before, &mask()) },
                "mask not given back"
            );
        })
        .join()
        .expect("the test's thread");
    }
}
