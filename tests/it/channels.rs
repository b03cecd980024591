//! The lock-free channels under stress: nothing lost that was not counted as dropped, order
//! kept per producer, no torn snapshots.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use haptwin::bus;

#[test]
fn queue_under_four_producers_loses_nothing_uncounted() {
    const PER_PRODUCER: u64 = 200_000;
    const PRODUCERS: u64 = 4;
    let (tx, rx) = bus::queue::<(u64, u64)>(256);
    let done = Arc::new(AtomicBool::new(false));
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut dropped = 0u64;
                for i in 0..PER_PRODUCER {
                    if let Err(v) = tx.push((p, i)) {
                        assert_eq!(v, (p, i), "a full queue hands the same value back");
                        dropped += 1;
                    }
                }
                dropped
            })
        })
        .collect();
    let consumer_done = done.clone();
    let consumer = std::thread::spawn(move || {
        let mut last = [None::<u64>; PRODUCERS as usize];
        let mut received = 0u64;
        loop {
            match rx.pop() {
                Some((p, i)) => {
                    if let Some(prev) = last[p as usize] {
                        assert!(i > prev, "producer {p}: {i} after {prev}");
                    }
                    last[p as usize] = Some(i);
                    received += 1;
                }
                None if consumer_done.load(Ordering::Acquire) && rx.is_empty() => break,
                None => std::hint::spin_loop(),
            }
        }
        (received, rx.dropped())
    });
    let dropped_by_producers: u64 = producers.into_iter().map(|h| h.join().unwrap()).sum();
    done.store(true, Ordering::Release);
    let (received, dropped_counted) = consumer.join().unwrap();
    assert_eq!(dropped_counted, dropped_by_producers);
    assert_eq!(received + dropped_counted, PRODUCERS * PER_PRODUCER);
    assert!(received > 0);
}

#[test]
fn full_queue_never_blocks() {
    let (tx, rx) = bus::queue::<u32>(8);
    for i in 0..8 {
        tx.push(i).unwrap();
    }
    // No consumer: a million pushes must all return (with the value) rather than wait.
    for i in 0..1_000_000 {
        assert_eq!(tx.push(i), Err(i));
    }
    assert_eq!(tx.dropped(), 1_000_000);
    assert_eq!(rx.len(), 8);
}

#[test]
fn triple_buffer_never_tears_and_only_goes_forward() {
    const PUBLISHES: u64 = 300_000;
    let (mut publisher, mut subscriber) = bus::triple_buffer(vec![0u64; 512]);
    let writer = std::thread::spawn(move || {
        for seq in 1..=PUBLISHES {
            // Written in place, element by element: a torn read would see mixed values.
            for v in publisher.back_mut().iter_mut() {
                *v = seq;
            }
            publisher.publish();
        }
    });
    let mut last = 0u64;
    let mut updates = 0u64;
    loop {
        let finished = writer.is_finished();
        if subscriber.update() {
            updates += 1;
            let snap = subscriber.read();
            let seq = snap[0];
            assert!(snap.iter().all(|&v| v == seq), "torn snapshot at {seq}");
            assert!(seq > last, "went back from {last} to {seq}");
            last = seq;
        } else if finished {
            break;
        }
    }
    writer.join().unwrap();
    // After the writer is done, the newest snapshot is the last one published.
    assert_eq!(subscriber.read()[0], PUBLISHES);
    assert!(updates > 1);
}
