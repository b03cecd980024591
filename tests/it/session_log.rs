//! Session logs: what the demo writes reads back; truncated or corrupted logs open and say what
//! was recovered; foreign or future files are refused by name.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use haptwin::demo::{run_demo, DemoOptions};
use haptwin::session::{LogError, SessionLog};

fn demo_log(dir: &Path, seconds: f64) -> PathBuf {
    let report = run_demo(
        &DemoOptions {
            seconds: Some(seconds),
            out_dir: dir.to_path_buf(),
            render: false,
            realtime: false,
            ..DemoOptions::default()
        },
        Arc::new(AtomicBool::new(false)),
    )
    .unwrap();
    assert_eq!(report.ticks, (seconds * 1000.0) as u64);
    report.log_path
}

#[test]
fn demo_log_reads_back_every_tick() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo_log(dir.path(), 1.5);
    let log = SessionLog::open(&path).unwrap();
    assert!(log.damage.is_none());
    assert_eq!(log.records.len(), 1500);
    for (i, r) in log.records.iter().enumerate() {
        assert_eq!(r.tick, i as u64);
    }
    let end = log.end.expect("closed cleanly");
    assert_eq!(end.records, 1500);
    assert_eq!(end.stop_reason, "completed");
    assert_eq!(log.header.scenario, "demo-palpation");
    // The last tick is a stop tick: force zero.
    let last = log.records.last().unwrap();
    assert_eq!(last.force_out_in_world_n, [0.0; 3]);
    assert_ne!(last.flags & haptwin::bus::tick_flags::STOPPING, 0);
}

#[test]
fn truncated_log_recovers_whole_chunks_and_says_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo_log(dir.path(), 1.0);
    let bytes = std::fs::read(&path).unwrap();
    let full = SessionLog::open(&path).unwrap();
    for cut in [bytes.len() - 1, bytes.len() * 2 / 3, bytes.len() / 3] {
        let log = SessionLog::parse(Path::new("cut.htlog"), &bytes[..cut]).unwrap();
        let damage = log.damage.as_ref().expect("a cut log reports damage");
        assert!(damage.offset as usize <= cut);
        assert!(damage.reason.contains("truncated"), "{}", damage.reason);
        assert!(log.end.is_none());
        // What was recovered is exactly a prefix of the full log.
        assert!(!log.records.is_empty() || cut < bytes.len() / 2);
        assert_eq!(&full.records[..log.records.len()], &log.records[..]);
    }
}

#[test]
fn flipped_byte_is_caught_by_the_chunk_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let path = demo_log(dir.path(), 1.0);
    let bytes = std::fs::read(&path).unwrap();
    let full = SessionLog::open(&path).unwrap();
    let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let first_chunk = 16 + header_len + 4;
    // A flip in the first chunk's count, in its payload, and in a later chunk's payload: the
    // checksum covers a chunk's header fields and payload alike.
    for at in [first_chunk + 5, first_chunk + 16 + 10, bytes.len() / 2] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x40;
        let log = SessionLog::parse(Path::new("flipped.htlog"), &damaged).unwrap();
        let damage = log.damage.expect("damage reported");
        assert!(damage.offset as usize <= at);
        if at < first_chunk + 32 {
            // Inside the first chunk: nothing before it to recover, and the checksum says so.
            assert_eq!(damage.offset as usize, first_chunk);
            assert!(log.records.is_empty());
            assert!(
                damage.reason.contains("checksum"),
                "flip at {at}: {}",
                damage.reason
            );
        }
        assert_eq!(&full.records[..log.records.len()], &log.records[..]);
    }
}

#[test]
fn foreign_and_future_files_are_refused_by_name() {
    let err = SessionLog::parse(Path::new("notes.txt"), b"hello world, not a log").unwrap_err();
    assert!(matches!(err, LogError::BadMagic { .. }));
    assert!(err.to_string().contains("notes.txt"));

    let mut future = b"HAPTWLOG".to_vec();
    future.extend_from_slice(&99u16.to_le_bytes());
    future.extend_from_slice(&[0; 6]);
    let err = SessionLog::parse(Path::new("future.htlog"), &future).unwrap_err();
    assert!(
        matches!(err, LogError::UnsupportedVersion { found: 99, .. }),
        "{err}"
    );

    let err = SessionLog::open(Path::new("/nonexistent/session.htlog")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/session.htlog"));
}
