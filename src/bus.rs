//! The typed lock-free channels between haptwin's threads.
//!
//! Three kinds of channel join the haptic thread to the rest of the program:
//!
//! - [`queue`]: a bounded single-producer/single-consumer ring (head and tail on their own cache
//!   lines with crossbeam's `CachePadded`) for telemetry (haptic → recorder) and commands
//!   (control → haptic). Both ends are wait-free; [`QueueTx::push`] never blocks: when the queue
//!   is full it counts a drop and hands the value back. (A multi-producer queue such as
//!   crossbeam's `ArrayQueue` was not used: its pop can spin on a producer preempted half-way
//!   through a push, which a `SCHED_FIFO` thread must never do.)
//! - [`triple_buffer`]: a single-producer/single-consumer triple buffer for snapshots
//!   (haptic → render). The producer writes in place into its back buffer and publishes with
//!   one atomic swap; the consumer always reads the newest complete snapshot. Neither side ever
//!   waits for the other.
//!
//! # Real-time contract
//! After construction, `QueueTx::push`, `QueueRx::pop`, `Publisher::back_mut`,
//! `Publisher::publish`, `Subscriber::update` and `Subscriber::read` are wait-free: they neither
//! allocate, lock, spin on the other side nor make system calls. All storage is allocated when
//! the channel is created.

use std::cell::UnsafeCell;
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use crossbeam::utils::CachePadded;

/// One haptic tick as it is recorded: what the simulation consumed and produced.
///
/// Positions are in the world frame, metres; forces in newtons, the force the device applies to
/// the hand. Timing fields are measured wall-clock values, not simulation inputs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TickRecord {
    /// Tick index since the start of the session (simulation time = tick * dt).
    pub tick: u64,
    /// Device stylus tip in the world frame, metres, as the device reported it this tick (NaN
    /// when it sent garbage; the previous value when it sent nothing, see `NO_INPUT`).
    pub device_pos_in_world_m: [f64; 3],
    /// Device button bits.
    pub device_buttons: u32,
    /// Simulated tool centre in the world frame, metres.
    pub tool_pos_in_world_m: [f64; 3],
    /// Force the tissue exerts on the tool, world frame, newtons (before safety).
    pub contact_force_in_world_n: [f64; 3],
    /// Force sent to the device, world frame, newtons (after clamping, rate limiting and fault
    /// handling); the device receives it rotated into its own frame by the calibration.
    pub force_out_in_world_n: [f64; 3],
    /// How late the tick started after its deadline, nanoseconds (saturating).
    pub lateness_ns: u32,
    /// How long the tick's work took, nanoseconds (saturating).
    pub work_ns: u32,
    /// [`tick_flags`] bits.
    pub flags: u32,
}

/// Bits of [`TickRecord::flags`].
pub mod tick_flags {
    /// The force was clamped to the device's force limit.
    pub const CLAMPED: u32 = 1 << 0;
    /// The force change was limited by the device's force-rate limit.
    pub const RATE_LIMITED: u32 = 1 << 1;
    /// A non-finite force (NaN or infinity) was replaced by zero.
    pub const NON_FINITE: u32 = 1 << 2;
    /// The device gave no fresh input within the stall window; force zeroed.
    pub const STALLED: u32 = 1 << 3;
    /// The device reported an error this tick; force zeroed.
    pub const DEVICE_FAULT: u32 = 1 << 4;
    /// A stop or emergency stop was in force; force zeroed.
    pub const STOPPING: u32 = 1 << 5;
    /// The tick started more than one period late.
    pub const OVERRUN: u32 = 1 << 6;
    /// The device delivered no sample this tick (the recorded device position is the last one).
    pub const NO_INPUT: u32 = 1 << 7;
    /// With [`DEVICE_FAULT`]: the device is gone (unplugged).
    pub const DEVICE_DISCONNECTED: u32 = 1 << 8;
    /// With [`DEVICE_FAULT`]: the device sent a report that does not parse or cannot be true
    /// (wrong length, an impossible jump, a non-finite position).
    pub const DEVICE_BAD_REPORT: u32 = 1 << 9;
    /// With [`DEVICE_FAULT`]: an operating-system I/O error.
    pub const DEVICE_IO_ERROR: u32 = 1 << 10;
    /// With [`STOPPING`]: an emergency stop is in force.
    pub const EMERGENCY_STOP: u32 = 1 << 11;
    /// With [`NON_FINITE`]: the tissue solver produced a non-finite state (rolled back).
    pub const SOLVER_FAULT: u32 = 1 << 12;
    /// The instrument's action is on this tick (jaws closed, blade or cautery live; the
    /// activate button, bit 0 of the device buttons, is held).
    pub const INSTRUMENT_ACTIVE: u32 = 1 << 13;
    /// The instrument cut or resected tissue this tick.
    pub const CUT: u32 = 1 << 14;
    /// The grasper took hold of tissue this tick.
    pub const GRASP: u32 = 1 << 15;
    /// The grasper let go this tick.
    pub const RELEASE: u32 = 1 << 16;
    /// The needle punctured a tissue surface this tick.
    pub const PUNCTURE: u32 = 1 << 17;
    /// The user marked the tool tip's position this tick (the mark button, bit 1, pressed).
    pub const MARK: u32 = 1 << 18;
    /// The tool touched a structure it must not touch (a vessel) this tick.
    pub const NO_GO_CONTACT: u32 = 1 << 19;
    /// The tool is in contact with tissue this tick.
    pub const CONTACT: u32 = 1 << 20;
}

/// Commands from the control thread to the haptic thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// Finish: zero the force, write one last record and leave the loop.
    Stop,
    /// Zero the force at once and keep it zero until [`Command::Resume`].
    EmergencyStop,
    /// Lift an emergency stop.
    Resume,
}

struct Ring<T> {
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    /// Next slot the consumer reads (only the consumer stores it).
    head: CachePadded<AtomicUsize>,
    /// Next slot the producer writes (only the producer stores it).
    tail: CachePadded<AtomicUsize>,
    dropped: AtomicU64,
}

// SAFETY: a slot is written only by the producer while it is outside [head, tail) and read only
// by the consumer while it is inside; the Release store of `tail` (resp. `head`) publishes the
// write (resp. frees the slot) and the Acquire load on the other side orders the access after it.
unsafe impl<T: Send> Sync for Ring<T> {}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        let (head, tail) = (*self.head.get_mut(), *self.tail.get_mut());
        let cap = self.slots.len();
        for i in head..tail {
            // SAFETY: slots in [head, tail) hold initialised values nobody else will read.
            unsafe { (*self.slots[i % cap].get()).assume_init_drop() };
        }
    }
}

/// The producer half of a bounded single-producer/single-consumer queue.
pub struct QueueTx<T> {
    ring: Arc<Ring<T>>,
}

/// The consumer half of a bounded single-producer/single-consumer queue.
pub struct QueueRx<T> {
    ring: Arc<Ring<T>>,
}

// SAFETY: each half touches only the slots its side owns (see `Ring`); moving a half to another
// thread is sound when `T` can be sent. Neither half is `Sync` or `Clone`, so each side has
// exactly one user.
unsafe impl<T: Send> Send for QueueTx<T> {}
// SAFETY: as for `QueueTx`.
unsafe impl<T: Send> Send for QueueRx<T> {}

impl<T> std::fmt::Debug for QueueTx<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueTx")
            .field("capacity", &self.ring.slots.len())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl<T> std::fmt::Debug for QueueRx<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueRx")
            .field("capacity", &self.ring.slots.len())
            .field("len", &self.len())
            .finish()
    }
}

/// A bounded single-producer/single-consumer queue holding at most `capacity` values.
///
/// Both ends are wait-free: a push or a pop is a bounded number of instructions whatever the
/// other side is doing (it may be preempted half-way, it does not matter), so a real-time
/// thread on either end never spins, yields or sleeps on the other.
///
/// ```
/// let (mut tx, mut rx) = haptwin::bus::queue::<u32>(1);
/// assert_eq!(tx.push(7), Ok(()));
/// assert_eq!(tx.push(8), Err(8)); // full: the value comes back, a drop is counted
/// assert_eq!(tx.dropped(), 1);
/// assert_eq!(rx.pop(), Some(7));
/// ```
///
/// # Panics
/// If `capacity` is zero.
pub fn queue<T>(capacity: usize) -> (QueueTx<T>, QueueRx<T>) {
    assert!(capacity > 0, "a queue needs room for one value");
    let slots = (0..capacity)
        .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
        .collect();
    let ring = Arc::new(Ring {
        slots,
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        dropped: AtomicU64::new(0),
    });
    (QueueTx { ring: ring.clone() }, QueueRx { ring })
}

impl<T> QueueTx<T> {
    /// Pushes `value`; when the queue is full, counts a drop and returns the value.
    /// Wait-free; never allocates.
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), T> {
        let ring = &*self.ring;
        let tail = ring.tail.load(Ordering::Relaxed);
        let head = ring.head.load(Ordering::Acquire);
        if tail.wrapping_sub(head) == ring.slots.len() {
            ring.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(value);
        }
        // SAFETY: the slot at `tail` is outside [head, tail): the consumer does not touch it.
        unsafe { (*ring.slots[tail % ring.slots.len()].get()).write(value) };
        ring.tail.store(tail.wrapping_add(1), Ordering::Release);
        Ok(())
    }

    /// Values dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.ring.dropped.load(Ordering::Relaxed)
    }
}

impl<T> QueueRx<T> {
    /// Takes the oldest value, if any. Wait-free.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        let ring = &*self.ring;
        let head = ring.head.load(Ordering::Relaxed);
        let tail = ring.tail.load(Ordering::Acquire);
        if head == tail {
            return None;
        }
        // SAFETY: the slot at `head` is inside [head, tail): the producer wrote it and published
        // it with the Release store of `tail` this thread acquired; it is read exactly once.
        let value = unsafe { (*ring.slots[head % ring.slots.len()].get()).assume_init_read() };
        ring.head.store(head.wrapping_add(1), Ordering::Release);
        Some(value)
    }

    /// Values waiting.
    pub fn len(&self) -> usize {
        let tail = self.ring.tail.load(Ordering::Acquire);
        tail.wrapping_sub(self.ring.head.load(Ordering::Relaxed))
    }

    /// Whether no value is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.ring.dropped.load(Ordering::Relaxed)
    }
}

const INDEX_MASK: u8 = 0b011;
const FRESH: u8 = 0b100;

struct TripleShared<T> {
    slots: [UnsafeCell<T>; 3],
    /// Index of the middle slot, plus [`FRESH`] when it holds a snapshot not yet taken.
    middle: AtomicU8,
}

// SAFETY: each slot is reachable by exactly one side at a time: the publisher owns `back`, the
// subscriber owns `front`, and ownership of the middle slot changes hands only through the
// atomic swap on `middle` (AcqRel), which orders the writes before the reads.
unsafe impl<T: Send> Sync for TripleShared<T> {}

/// The producer half of a triple buffer.
pub struct Publisher<T> {
    shared: Arc<TripleShared<T>>,
    back: u8,
}

impl<T> std::fmt::Debug for Publisher<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("back", &self.back)
            .finish()
    }
}

/// The consumer half of a triple buffer.
pub struct Subscriber<T> {
    shared: Arc<TripleShared<T>>,
    front: u8,
}

impl<T> std::fmt::Debug for Subscriber<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("front", &self.front)
            .finish()
    }
}

// SAFETY: the halves only touch the slots they own (see `TripleShared`), so moving one half to
// another thread is sound whenever `T` itself can be sent.
unsafe impl<T: Send> Send for Publisher<T> {}
// SAFETY: as for `Publisher`.
unsafe impl<T: Send> Send for Subscriber<T> {}

/// A triple buffer whose three slots start as clones of `initial`.
///
/// Allocate everything a snapshot will ever need in `initial` (e.g. vectors of the final
/// length): the publisher then writes in place and never allocates.
///
/// ```
/// let (mut publisher, mut subscriber) = haptwin::bus::triple_buffer(vec![0.0f32; 3]);
/// publisher.back_mut().copy_from_slice(&[1.0, 2.0, 3.0]); // in place, no allocation
/// publisher.publish();
/// assert!(subscriber.update());
/// assert_eq!(subscriber.read(), &[1.0, 2.0, 3.0]);
/// assert!(!subscriber.update()); // nothing newer yet
/// ```
pub fn triple_buffer<T: Clone>(initial: T) -> (Publisher<T>, Subscriber<T>) {
    let shared = Arc::new(TripleShared {
        slots: [
            UnsafeCell::new(initial.clone()),
            UnsafeCell::new(initial.clone()),
            UnsafeCell::new(initial),
        ],
        middle: AtomicU8::new(1),
    });
    (
        Publisher {
            shared: shared.clone(),
            back: 0,
        },
        Subscriber { shared, front: 2 },
    )
}

impl<T> Publisher<T> {
    /// The back buffer, to be filled in place before [`Publisher::publish`]. It holds an older
    /// snapshot (not necessarily the last one published).
    #[inline]
    pub fn back_mut(&mut self) -> &mut T {
        // SAFETY: the back slot belongs to the publisher alone until it is swapped out.
        unsafe { &mut *self.shared.slots[self.back as usize].get() }
    }

    /// Makes the back buffer the newest snapshot. One atomic swap; never waits.
    #[inline]
    pub fn publish(&mut self) {
        let prev = self.shared.middle.swap(self.back | FRESH, Ordering::AcqRel);
        self.back = prev & INDEX_MASK;
    }
}

impl<T> Subscriber<T> {
    /// Takes the newest published snapshot if there is one not yet taken; returns whether the
    /// front buffer changed. Never waits.
    #[inline]
    pub fn update(&mut self) -> bool {
        if self.shared.middle.load(Ordering::Relaxed) & FRESH == 0 {
            return false;
        }
        let prev = self.shared.middle.swap(self.front, Ordering::AcqRel);
        self.front = prev & INDEX_MASK;
        true
    }

    /// The front buffer: the snapshot taken by the last successful [`Subscriber::update`].
    #[inline]
    pub fn read(&self) -> &T {
        // SAFETY: the front slot belongs to the subscriber alone until it is swapped out.
        unsafe { &*self.shared.slots[self.front as usize].get() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_queue_counts_a_drop_and_hands_the_value_back() {
        let (mut tx, mut rx) = queue::<u32>(2);
        assert_eq!(tx.push(1), Ok(()));
        assert_eq!(tx.push(2), Ok(()));
        assert_eq!(tx.push(3), Err(3));
        assert_eq!(tx.dropped(), 1);
        assert_eq!(rx.dropped(), 1);
        assert_eq!(rx.pop(), Some(1));
        assert_eq!(rx.pop(), Some(2));
        assert_eq!(rx.pop(), None);
    }

    #[test]
    fn wraps_around_and_drops_what_is_left() {
        let (mut tx, mut rx) = queue::<Arc<u32>>(3);
        let counted = Arc::new(5);
        for round in 0..10 {
            tx.push(counted.clone()).unwrap();
            tx.push(counted.clone()).unwrap();
            assert_eq!(rx.len(), 2, "round {round}");
            assert_eq!(*rx.pop().unwrap(), 5);
            assert_eq!(*rx.pop().unwrap(), 5);
        }
        tx.push(counted.clone()).unwrap();
        tx.push(counted.clone()).unwrap();
        assert_eq!(Arc::strong_count(&counted), 3);
        drop(tx);
        drop(rx);
        assert_eq!(
            Arc::strong_count(&counted),
            1,
            "values left in the queue are dropped"
        );
    }

    #[test]
    fn triple_buffer_gives_newest() {
        let (mut p, mut s) = triple_buffer(0u64);
        assert!(!s.update());
        *p.back_mut() = 1;
        p.publish();
        *p.back_mut() = 2;
        p.publish();
        assert!(s.update());
        assert_eq!(*s.read(), 2);
        assert!(!s.update());
        assert_eq!(*s.read(), 2);
    }
}
