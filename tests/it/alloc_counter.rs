//! A global allocator that counts allocations made by "armed" threads.
//!
//! A thread arms itself with [`arm`] and disarms with [`disarm`]; every allocation,
//! reallocation or deallocation it makes in between is counted in [`violations`]. Other threads
//! are not counted, so tests that run in parallel do not disturb each other's counts beyond their
//! own armed threads (each test that arms uses its own counter slot through [`Guarded`]).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

static VIOLATIONS: AtomicU64 = AtomicU64::new(0);

#[inline]
fn note() {
    // `try_with` so that allocation during thread-local teardown is never a problem.
    if ARMED.try_with(|a| a.get()).unwrap_or(false) {
        VIOLATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting touches only a
// const-initialised thread-local and an atomic, neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note();
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: forwarded with the caller's arguments.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Starts counting this thread's allocations.
pub fn arm() {
    ARMED.with(|a| a.set(true));
}

/// Stops counting this thread's allocations.
pub fn disarm() {
    ARMED.with(|a| a.set(false));
}

/// Allocations counted so far, over all armed threads.
pub fn violations() -> u64 {
    VIOLATIONS.load(Ordering::Relaxed)
}

/// Allocations this thread makes while running `f` (armed around it). Hold [`EXCLUSIVE`].
pub fn allocations_during<R>(f: impl FnOnce() -> R) -> (u64, R) {
    let before = violations();
    arm();
    let out = f();
    disarm();
    (violations() - before, out)
}

/// Serialises the tests that arm threads, so each reads a count that is its own.
pub static EXCLUSIVE: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn the_counter_sees_allocations_of_armed_threads_only() {
    let _g = EXCLUSIVE.lock().unwrap_or_else(|e| e.into_inner());
    let before = violations();
    let v: Vec<u8> = Vec::with_capacity(10); // not armed: not counted
    drop(v);
    assert_eq!(violations(), before);
    arm();
    let v: Vec<u8> = Vec::with_capacity(10);
    disarm();
    drop(v);
    assert_eq!(
        violations(),
        before + 1,
        "the counting allocator must see an armed allocation"
    );
}
