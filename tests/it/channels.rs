//! The lock-free channels under stress: nothing lost that was not counted as dropped, order
//! kept, no torn snapshots.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use haptwin::bus;

#[test]
fn queue_under_stress_loses_nothing_uncounted_and_keeps_order() {
    const PUSHES: u64 = 2_000_000;
    let (mut tx, mut rx) = bus::queue::<u64>(256);
    let done = Arc::new(AtomicBool::new(false));
    let producer = std::thread::spawn(move || {
        let mut dropped = 0u64;
        for i in 0..PUSHES {
            if let Err(v) = tx.push(i) {
                assert_eq!(v, i, "a full queue hands the same value back");
                dropped += 1;
            }
        }
        (dropped, tx.dropped())
    });
    let consumer_done = done.clone();
    let consumer = std::thread::spawn(move || {
        let mut last = None::<u64>;
        let mut received = 0u64;
        loop {
            match rx.pop() {
                Some(i) => {
                    if let Some(prev) = last {
                        assert!(i > prev, "{i} after {prev}: order broken or duplicate");
                    }
                    last = Some(i);
                    received += 1;
                    // Now and then fall behind, so the queue fills and drops happen.
                    if i % 50_000 == 0 {
                        std::thread::sleep(std::time::Duration::from_micros(200));
                    }
                }
                None if consumer_done.load(Ordering::Acquire) && rx.is_empty() => break,
                None => std::hint::spin_loop(),
            }
        }
        (received, rx.dropped())
    });
    let (dropped_seen_by_producer, dropped_counted) = producer.join().unwrap();
    done.store(true, Ordering::Release);
    let (received, dropped_seen_by_consumer) = consumer.join().unwrap();
    assert_eq!(dropped_counted, dropped_seen_by_producer);
    assert_eq!(dropped_seen_by_consumer, dropped_seen_by_producer);
    assert_eq!(received + dropped_counted, PUSHES);
    assert!(received > 0);
    assert!(
        dropped_counted > 0,
        "the stress should have filled the queue at least once"
    );
}

#[test]
fn full_queue_never_blocks() {
    let (mut tx, rx) = bus::queue::<u32>(8);
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
