//! Real-time primitives: a monotonic clock, an absolute-deadline ticker and the request for
//! real-time scheduling.
//!
//! [`Ticker`] sleeps with `clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)` until shortly before
//! each deadline, then spins on the clock for the last [`Ticker::spin_ns`] nanoseconds. Deadlines
//! are absolute (`start + k * period`), so lateness never accumulates. When a tick starts more
//! than one period late the ticker counts an overrun and re-anchors on the present instead of
//! bursting to catch up. [`now_ns`] reads the vDSO clock (no system call).

use std::io;

/// Nanoseconds on `CLOCK_MONOTONIC`.
#[inline]
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleeps until `deadline_ns` on `CLOCK_MONOTONIC` (absolute), retrying on signals.
pub fn sleep_until_ns(deadline_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
    };
    loop {
        // SAFETY: `ts` is a valid timespec; the remaining-time pointer may be null with
        // TIMER_ABSTIME.
        let rc = unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &ts,
                std::ptr::null_mut(),
            )
        };
        if rc != libc::EINTR {
            return;
        }
    }
}

/// A periodic absolute-deadline timer.
#[derive(Debug, Clone)]
pub struct Ticker {
    period_ns: u64,
    /// Nanoseconds before each deadline at which sleeping stops and spinning starts.
    pub spin_ns: u64,
    next_deadline_ns: u64,
    overruns: u64,
}

/// What one wait of the ticker observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wake {
    /// The deadline this tick was due at, `CLOCK_MONOTONIC` nanoseconds.
    pub deadline_ns: u64,
    /// When the wait returned, `CLOCK_MONOTONIC` nanoseconds.
    pub woke_ns: u64,
    /// The tick started more than one period late.
    pub overrun: bool,
}

impl Wake {
    /// How late the tick started, nanoseconds.
    pub fn lateness_ns(&self) -> u64 {
        self.woke_ns.saturating_sub(self.deadline_ns)
    }
}

impl Ticker {
    /// A ticker with period `period_ns` whose first deadline is one period from now.
    pub fn new(period_ns: u64, spin_ns: u64) -> Self {
        Self {
            period_ns,
            spin_ns: spin_ns.min(period_ns),
            next_deadline_ns: now_ns() + period_ns,
            overruns: 0,
        }
    }

    /// Period, nanoseconds.
    pub fn period_ns(&self) -> u64 {
        self.period_ns
    }

    /// The deadline the next [`Ticker::wait`] waits for, `CLOCK_MONOTONIC` nanoseconds.
    pub fn next_deadline_ns(&self) -> u64 {
        self.next_deadline_ns
    }

    /// Ticks that started more than one period late so far.
    pub fn overruns(&self) -> u64 {
        self.overruns
    }

    /// Waits for the next deadline. Never allocates.
    pub fn wait(&mut self) -> Wake {
        let deadline = self.next_deadline_ns;
        if deadline > self.spin_ns {
            let sleep_to = deadline - self.spin_ns;
            if now_ns() < sleep_to {
                sleep_until_ns(sleep_to);
            }
        }
        let mut now = now_ns();
        while now < deadline {
            std::hint::spin_loop();
            now = now_ns();
        }
        let overrun = now - deadline > self.period_ns;
        if overrun {
            self.overruns += 1;
            self.next_deadline_ns = now + self.period_ns;
        } else {
            self.next_deadline_ns = deadline + self.period_ns;
        }
        Wake {
            deadline_ns: deadline,
            woke_ns: now,
            overrun,
        }
    }
}

/// Whether the calling thread got real-time scheduling.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RealtimeStatus {
    /// `SCHED_FIFO` at this priority.
    Granted {
        /// The FIFO priority.
        priority: i32,
    },
    /// The request was refused; the thread runs under the normal scheduler.
    Refused {
        /// Why (the OS error), and how to allow it.
        reason: String,
    },
    /// Real-time scheduling was not asked for.
    NotRequested,
}

/// Asks for `SCHED_FIFO` at `priority` for the calling thread.
pub fn request_realtime(priority: i32) -> RealtimeStatus {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: pthread_self() is the calling thread; `param` is a valid sched_param.
    let rc = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
    if rc == 0 {
        RealtimeStatus::Granted { priority }
    } else {
        let err = io::Error::from_raw_os_error(rc);
        RealtimeStatus::Refused {
            reason: format!(
                "SCHED_FIFO priority {priority} refused: {err} (grant CAP_SYS_NICE, or an rtprio \
                 limit in /etc/security/limits.d, e.g. '@haptwin - rtprio 90')"
            ),
        }
    }
}

/// Blocks SIGINT and SIGTERM on the calling thread, so their handlers run on another thread
/// (the main thread) and never interrupt the haptic thread's sleep or work.
pub fn block_termination_signals() {
    // SAFETY: a zeroed sigset_t is valid input to sigemptyset; the set is initialised before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Puts the calling thread back under the normal scheduler (used by short-lived probes).
pub fn drop_realtime() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: as in `request_realtime`.
    unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_OTHER, &param) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_realtime_says_why_and_how_to_allow_it() {
        // Priority 1000 is out of SCHED_FIFO's range for everyone, root included.
        let status = std::thread::spawn(|| request_realtime(1000))
            .join()
            .unwrap();
        match status {
            RealtimeStatus::Refused { reason } => {
                assert!(reason.contains("1000"), "{reason}");
                assert!(reason.contains("rtprio"), "{reason}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn ticker_deadlines_are_absolute() {
        let mut t = Ticker::new(1_000_000, 20_000);
        let first = t.wait();
        let mut last = first;
        for _ in 0..20 {
            last = t.wait();
            assert!(last.woke_ns >= last.deadline_ns);
        }
        if t.overruns() == 0 {
            assert_eq!(last.deadline_ns - first.deadline_ns, 20 * 1_000_000);
        }
    }
}
