//! Session logs: what the demo writes reads back; truncated or corrupted logs open and say what
//! was recovered; foreign or future files are refused by name.
//!
//! The corruption tests use a synthetic log of known chunks (a clock chunk, tick chunks of
//! uneven sizes, the end chunk), so every one asserts exactly how many records survive.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use haptwin::bus::TickRecord;
use haptwin::demo::{run_demo, DemoOptions};
use haptwin::session::log::{self, LogClock, LogEnd, TAG_CLOCK, TAG_END, TAG_TICKS};
use haptwin::session::{LogError, LogHeader, SessionLog};

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
    assert_eq!(log.header.scenario, "palpation");
    assert_eq!(log.header.case, "phantom");
    assert_eq!(log.header.calibration_digest.len(), 64);
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

#[test]
fn demo_log_has_its_clock_before_the_first_ticks() {
    let dir = tempfile::tempdir().unwrap();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let path = demo_log(dir.path(), 0.3);
    let bytes = std::fs::read(&path).unwrap();
    let chunks = chunks_of(&bytes);
    assert_eq!(&chunks[0].tag, TAG_CLOCK, "{chunks:?}");
    assert_eq!(&chunks[1].tag, TAG_TICKS);
    assert_eq!(&chunks.last().unwrap().tag, TAG_END);
    let log = SessionLog::open(&path).unwrap();
    let clock = log.clock.expect("the demo logs its clock");
    assert_eq!(clock.period_ns, 1_000_000);
    assert!(
        clock.tick0_unix_ns > before,
        "tick 0 was due after the demo began"
    );
    let started = clock.tick_start_unix_ns(&log.records).unwrap();
    assert!(started.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(log.chunks, chunks.len());
    let text = log.recovery_text();
    assert!(
        text.starts_with("recovered 300 ticks (0 to 299, 0.300 s) from ")
            && text.ends_with("; closed cleanly (completed)"),
        "{text}"
    );
}

/// A chunk as it lies in a file.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    offset: usize,
    tag: [u8; 4],
    count: usize,
    payload_len: usize,
}

impl Chunk {
    fn payload_at(&self) -> usize {
        self.offset + 16
    }
    fn end(&self) -> usize {
        self.payload_at() + self.payload_len
    }
}

/// The chunks of an intact log.
fn chunks_of(bytes: &[u8]) -> Vec<Chunk> {
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) as usize;
    let mut at = 16 + u32_at(12) + 4;
    let mut out = Vec::new();
    while at < bytes.len() {
        let c = Chunk {
            offset: at,
            tag: bytes[at..at + 4].try_into().unwrap(),
            count: u32_at(at + 4),
            payload_len: u32_at(at + 8),
        };
        at = c.end();
        out.push(c);
    }
    assert_eq!(at, bytes.len());
    out
}

/// Tick records in the chunks before chunk `i`.
fn records_before(chunks: &[Chunk], i: usize) -> usize {
    chunks[..i]
        .iter()
        .filter(|c| &c.tag == TAG_TICKS)
        .map(|c| c.count)
        .sum()
}

/// Tick chunks of the synthetic log, in records.
const SIZES: [usize; 6] = [20, 3, 21, 17, 1, 20];

/// A log of [`SIZES`] tick chunks after a clock chunk, closed with an end chunk.
fn synthetic_log() -> Vec<u8> {
    let header = LogHeader {
        software_version: "test".into(),
        scenario: "synthetic".into(),
        case_id: "phantom-block".into(),
        device: "none".into(),
        dt_s: 1e-3,
        tissue: serde_json::json!({}),
        tool_radius_m: 0.012,
        coupling: serde_json::json!({}),
        seed: 7,
        started_unix_s: 1_700_000_000,
        case: "block".into(),
        tets: 0,
        instrument: None,
        calibration_digest: String::new(),
    };
    let mut out = Vec::new();
    log::write_header(&mut out, &header).unwrap();
    let clock = LogClock {
        tick0_unix_ns: 1_700_000_000_000_000_000,
        period_ns: 1_000_000,
    };
    log::write_chunk(&mut out, TAG_CLOCK, 0, &serde_json::to_vec(&clock).unwrap()).unwrap();
    let mut tick = 0u64;
    for n in SIZES {
        let mut payload = Vec::new();
        for _ in 0..n {
            let r = TickRecord {
                tick,
                force_out_in_world_n: [tick as f64, -0.5, 1e-3],
                lateness_ns: 1_000 + tick as u32,
                ..TickRecord::default()
            };
            log::encode_record(&r, &mut payload);
            tick += 1;
        }
        log::write_chunk(&mut out, TAG_TICKS, n as u32, &payload).unwrap();
    }
    let end = LogEnd {
        records: tick,
        dropped: 0,
        stop_reason: "completed".into(),
    };
    log::write_chunk(&mut out, TAG_END, 0, &serde_json::to_vec(&end).unwrap()).unwrap();
    out
}

/// Parses `bytes`, which must open, and checks that what it recovered is exactly the first
/// `records` ticks of the synthetic log.
fn recovered(bytes: &[u8], records: usize) -> SessionLog {
    let log = SessionLog::parse(Path::new("synthetic.htlog"), bytes).unwrap();
    assert_eq!(log.records.len(), records, "{}", log.recovery_text());
    for (i, r) in log.records.iter().enumerate() {
        assert_eq!(r.tick, i as u64);
        assert_eq!(r.force_out_in_world_n[0], i as f64);
    }
    log
}

#[test]
fn synthetic_log_reads_back_whole() {
    let bytes = synthetic_log();
    let chunks = chunks_of(&bytes);
    assert_eq!(chunks.len(), SIZES.len() + 2);
    let total: usize = SIZES.iter().sum();
    let log = recovered(&bytes, total);
    assert!(log.damage.is_none());
    assert_eq!(log.end.as_ref().unwrap().records, total as u64);
    assert_eq!(log.clock.unwrap().period_ns, 1_000_000);
    assert_eq!(log.chunks, SIZES.len() + 2);
    assert_eq!(
        log.recovery_text(),
        "recovered 82 ticks (0 to 81, 0.082 s) from 8 chunks; closed cleanly (completed)"
    );
}

#[test]
fn a_flipped_header_bit_is_a_bad_header_naming_the_file() {
    let bytes = synthetic_log();
    let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    // In the JSON, in its checksum, and in its length (too long: it then ends inside the
    // header's checksum or the chunks, and the checksum fails either way).
    for (at, bit) in [(16 + header_len / 2, 2), (16 + header_len + 1, 0), (12, 3)] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 1 << bit;
        let err = SessionLog::parse(Path::new("flipped-header.htlog"), &damaged).unwrap_err();
        assert!(
            matches!(err, LogError::BadHeader { .. }),
            "byte {at}: {err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("flipped-header.htlog") && text.contains("header is damaged"),
            "{text}"
        );
    }
    // A bit in the length that makes the header run past the end of the file.
    let mut damaged = bytes.clone();
    damaged[15] ^= 0x10;
    let err = SessionLog::parse(Path::new("long-header.htlog"), &damaged).unwrap_err();
    assert!(err.to_string().contains("ends inside the header"), "{err}");
}

#[test]
fn a_flipped_chunk_length_bit_keeps_the_chunks_before_it() {
    let bytes = synthetic_log();
    let chunks = chunks_of(&bytes);
    // The fourth tick chunk (index 4: after the clock chunk and three tick chunks).
    let c = chunks[4];
    for (bit, reason) in [
        // One byte more or less: the checksum (it covers the length) fails.
        (0, "checksum"),
        // 2^20 bytes more: past the end of the file, so it reads as a cut-short chunk.
        (20, "truncated"),
        // 2^31: more than any chunk may hold.
        (31, "implausible"),
    ] {
        let mut damaged = bytes.clone();
        let v = u32::from_le_bytes(damaged[c.offset + 8..c.offset + 12].try_into().unwrap());
        damaged[c.offset + 8..c.offset + 12].copy_from_slice(&(v ^ (1 << bit)).to_le_bytes());
        let log = recovered(&damaged, records_before(&chunks, 4));
        assert_eq!(log.records.len(), 20 + 3 + 21);
        let d = log.damage.expect("damage");
        assert_eq!(d.offset as usize, c.offset, "bit {bit}");
        assert!(d.reason.contains(reason), "bit {bit}: {}", d.reason);
        assert!(log.end.is_none());
    }
}

#[test]
fn a_flipped_payload_bit_in_a_middle_chunk_keeps_the_chunks_before_it() {
    let bytes = synthetic_log();
    let chunks = chunks_of(&bytes);
    for i in 1..chunks.len() - 1 {
        let c = chunks[i];
        for at in [
            c.payload_at(),
            c.payload_at() + c.payload_len / 2,
            c.end() - 1,
        ] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x08;
            let log = recovered(&damaged, records_before(&chunks, i));
            let d = log.damage.as_ref().expect("damage");
            assert_eq!(d.offset as usize, c.offset, "chunk {i}, byte {at}");
            assert_eq!(d.reason, "chunk checksum mismatch");
            assert!(!d.truncated);
            assert!(log.end.is_none());
            assert_eq!(log.clock.is_some(), i > 0);
            let text = log.recovery_text();
            assert!(
                text.contains(&format!("damaged chunk at byte {}", thousands(c.offset)))
                    && text.contains("checksum"),
                "{text}"
            );
        }
    }
}

#[test]
fn a_flipped_bit_in_the_clock_chunk_loses_the_clock_and_everything_after() {
    let bytes = synthetic_log();
    let chunks = chunks_of(&bytes);
    let mut damaged = bytes.clone();
    damaged[chunks[0].payload_at() + 3] ^= 0x01;
    let log = recovered(&damaged, 0);
    assert!(log.clock.is_none());
    assert_eq!(log.damage.unwrap().offset as usize, chunks[0].offset);
}

#[test]
fn a_flipped_bit_in_the_end_chunk_keeps_every_record() {
    let bytes = synthetic_log();
    let chunks = chunks_of(&bytes);
    let end = *chunks.last().unwrap();
    let total: usize = SIZES.iter().sum();
    // Its tag, its count, and its JSON.
    for at in [end.offset + 1, end.offset + 4, end.payload_at() + 5] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x01;
        let log = recovered(&damaged, total);
        assert!(log.end.is_none(), "byte {at}");
        let d = log.damage.expect("damage");
        assert_eq!(d.offset as usize, end.offset);
        assert!(d.reason.contains("checksum"), "byte {at}: {}", d.reason);
    }
}

#[test]
fn an_unknown_chunk_tag_is_damage() {
    let mut bytes = synthetic_log();
    let chunks = chunks_of(&bytes);
    // A well-formed chunk with a tag this build does not know, after the third tick chunk.
    let mut odd = Vec::new();
    log::write_chunk(&mut odd, b"WHAT", 0, b"{}").unwrap();
    let at = chunks[4].offset;
    bytes.splice(at..at, odd);
    let log = recovered(&bytes, records_before(&chunks, 4));
    let d = log.damage.unwrap();
    assert_eq!(d.offset as usize, at);
    assert!(d.reason.contains("unknown chunk tag"), "{}", d.reason);
}

#[test]
fn a_log_cut_inside_a_chunk_keeps_exactly_the_whole_chunks() {
    let bytes = synthetic_log();
    let chunks = chunks_of(&bytes);
    for (i, c) in chunks.iter().enumerate() {
        // Inside its header, at its payload's first byte, in the middle, one byte short.
        for cut in [
            c.offset + 1,
            c.offset + 15,
            c.payload_at(),
            c.payload_at() + c.payload_len / 2,
            c.end() - 1,
        ] {
            let log = recovered(&bytes[..cut], records_before(&chunks, i));
            let d = log.damage.as_ref().expect("a cut log reports damage");
            assert_eq!(d.offset as usize, c.offset, "cut at {cut}");
            assert!(
                d.truncated && d.reason.contains("truncated"),
                "{}",
                d.reason
            );
            assert!(log.end.is_none());
            let text = log.recovery_text();
            assert!(
                text.contains(&format!(
                    "the log ends inside a chunk at byte {} of {}",
                    thousands(c.offset),
                    thousands(cut)
                )),
                "{text}"
            );
        }
        // Cut exactly after the chunk: nothing damaged, just not closed.
        let log = recovered(&bytes[..c.end()], records_before(&chunks, i + 1));
        assert!(log.damage.is_none());
        assert_eq!(log.end.is_some(), i == chunks.len() - 1);
    }
    let cut = chunks[3].payload_at() + 100;
    assert_eq!(
        SessionLog::parse(Path::new("cut.htlog"), &bytes[..cut])
            .unwrap()
            .recovery_text(),
        format!(
            "recovered 23 ticks (0 to 22, 0.023 s) from 3 chunks; the log ends inside a chunk \
             at byte {} of {} (truncated chunk (100 of 2520 payload bytes)): the session did \
             not close, everything before that chunk was kept",
            thousands(chunks[3].offset),
            thousands(cut)
        )
    );
}

#[test]
fn wrong_version_empty_and_magic_only_files_are_refused_clearly() {
    let mut bytes = synthetic_log();
    bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
    let err = SessionLog::parse(Path::new("v2.htlog"), &bytes).unwrap_err();
    assert!(
        matches!(err, LogError::UnsupportedVersion { found: 2, .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("v2.htlog") && text.contains("version 2") && text.contains("version 1"),
        "{text}"
    );

    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.htlog");
    std::fs::write(&empty, b"").unwrap();
    let err = SessionLog::open(&empty).unwrap_err();
    assert!(matches!(err, LogError::BadMagic { .. }), "{err}");
    assert!(err.to_string().contains("empty.htlog"), "{err}");

    let magic = dir.path().join("magic.htlog");
    std::fs::write(&magic, b"HAPTWLOG").unwrap();
    let err = SessionLog::open(&magic).unwrap_err();
    assert!(matches!(err, LogError::BadHeader { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("magic.htlog") && text.contains("ends inside the header"),
        "{text}"
    );

    // The header alone: it opens, with nothing recovered.
    let chunks = chunks_of(&synthetic_log());
    let log = recovered(&synthetic_log()[..chunks[0].offset], 0);
    assert!(log.damage.is_none() && log.end.is_none() && log.clock.is_none());
    assert_eq!(
        log.recovery_text(),
        "recovered 0 ticks from 0 chunks; the log ends after a whole chunk with no end chunk: \
         the session did not close"
    );
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
