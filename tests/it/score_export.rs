//! Session exports: JIGSAWS-layout kinematics of a synthetic constant-velocity move, xAPI
//! statements checked against the xAPI required fields, and posting them to a real HTTP server
//! standing in for a Learning Record Store (answering 200, 401 and 500; and nobody listening).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;
use std::time::Duration;

use haptwin::bus::{tick_flags, TickRecord};
use haptwin::score::card::{Better, MetricBound, MetricValue, ScoreCard};
use haptwin::score::export::{
    jigsaws_columns, jigsaws_kinematics, jigsaws_sidecar_path, post_statements, write_jigsaws,
    write_xapi, xapi_statements, xapi_statements_with, ExportError, LrsConfig, XapiActor,
    XapiOptions, GRIPPER_CLOSED_RAD, GRIPPER_OPEN_RAD, JIGSAWS_COLUMNS, JIGSAWS_RATE_HZ,
    VERB_ATTEMPTED, VERB_COMPLETED, VERB_FAILED, VERB_PASSED,
};
use haptwin::session::{LogHeader, SessionLog};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// JIGSAWS
// ---------------------------------------------------------------------------------------------

const SPEED_M_PER_S: f64 = 0.1;
const X0: f64 = -0.05;
const TOOL_YZ: [f64; 2] = [0.01, -0.02];
const DEVICE_OFFSET: [f64; 3] = [0.0, 0.03, 0.0];

fn header() -> LogHeader {
    LogHeader {
        software_version: "0.1.0".into(),
        scenario: "warmup".into(),
        case_id: "case-7f3a".into(),
        device: "sim".into(),
        dt_s: 0.001,
        tissue: json!({}),
        tool_radius_m: 0.002,
        coupling: Value::Null,
        seed: 0,
        started_unix_s: 1_798_675_200,
        case: "phantom".into(),
        tets: 4000,
        instrument: None,
        calibration_digest: String::new(),
    }
}

/// A straight move along +x at 0.1 m/s for `ticks` ticks at 1 kHz; the instrument is active
/// (jaws closed) from t = 1 s on.
fn straight_log(ticks: u64) -> SessionLog {
    let records = (0..ticks)
        .map(|tick| {
            let t = tick as f64 * 0.001;
            let tool = [X0 + SPEED_M_PER_S * t, TOOL_YZ[0], TOOL_YZ[1]];
            TickRecord {
                tick,
                device_pos_in_world_m: [0, 1, 2].map(|i| tool[i] + DEVICE_OFFSET[i]),
                tool_pos_in_world_m: tool,
                flags: if tick >= 1000 {
                    tick_flags::INSTRUMENT_ACTIVE
                } else {
                    0
                },
                ..TickRecord::default()
            }
        })
        .collect();
    SessionLog {
        header: header(),
        records,
        end: None,
        damage: None,
        clock: None,
        chunks: 1,
        file_len: 0,
    }
}

fn parse_rows(text: &str) -> Vec<Vec<f64>> {
    text.lines()
        .map(|l| {
            l.split_whitespace()
                .map(|v| v.parse::<f64>().unwrap())
                .collect()
        })
        .collect()
}

/// Column index (0-based) of `name`.
fn col(name: &str) -> usize {
    jigsaws_columns().iter().position(|c| c == name).unwrap()
}

#[test]
fn jigsaws_constant_velocity_move() {
    let text = jigsaws_kinematics(&straight_log(2000), JIGSAWS_RATE_HZ).unwrap();
    assert!(text.ends_with('\n'));
    assert!(!text.contains('e'), "plain decimals, no exponents");
    let rows = parse_rows(&text);
    assert_eq!(rows.len(), 60, "2 s at 30 Hz");
    let cols = jigsaws_columns();
    assert_eq!(cols.len(), 76);
    assert_eq!(JIGSAWS_COLUMNS, 76);
    assert_eq!(cols[0], "master_left_pos_x");
    assert_eq!(cols[19], "master_right_pos_x");
    assert_eq!(cols[38], "slave_left_pos_x");
    assert_eq!(cols[57], "slave_right_pos_x");
    assert_eq!(cols[75], "slave_right_gripper_angle");
    let unique: std::collections::HashSet<_> = cols.iter().collect();
    assert_eq!(unique.len(), 76);

    for (k, row) in rows.iter().enumerate() {
        assert_eq!(row.len(), 76, "row {k}");
        let t_mid = (k as f64 + 0.5) / 30.0;
        // Slave right: the tool.
        let x = row[col("slave_right_pos_x")];
        assert!(
            (x - (X0 + SPEED_M_PER_S * t_mid)).abs() < 1e-4,
            "row {k}: x {x}"
        );
        assert!((row[col("slave_right_pos_y")] - TOOL_YZ[0]).abs() < 1e-6);
        assert!((row[col("slave_right_pos_z")] - TOOL_YZ[1]).abs() < 1e-6);
        assert!(
            (row[col("slave_right_vel_x")] - SPEED_M_PER_S).abs() < 2e-6,
            "row {k}"
        );
        assert!(row[col("slave_right_vel_y")].abs() < 2e-6);
        assert!(row[col("slave_right_vel_z")].abs() < 2e-6);
        // Master right: the device, 3 cm above the tool, same velocity.
        let dx = row[col("master_right_pos_x")];
        assert!((dx - x).abs() < 2e-6);
        assert!((row[col("master_right_pos_y")] - (TOOL_YZ[0] + 0.03)).abs() < 1e-6);
        assert!((row[col("master_right_vel_x")] - SPEED_M_PER_S).abs() < 2e-6);
        // Identity rotation, no angular velocity, in both right-hand slots.
        for slot in ["master_right", "slave_right"] {
            for r in 1..=3 {
                for c in 1..=3 {
                    let want = if r == c { 1.0 } else { 0.0 };
                    assert_eq!(row[col(&format!("{slot}_rot_r{r}{c}"))], want);
                }
            }
            for a in ["x", "y", "z"] {
                assert_eq!(row[col(&format!("{slot}_angvel_{a}"))], 0.0);
            }
            // Open for the first second, closed after.
            let want = if k < 30 {
                GRIPPER_OPEN_RAD
            } else {
                GRIPPER_CLOSED_RAD
            };
            assert!((row[col(&format!("{slot}_gripper_angle"))] - want).abs() < 1e-6);
        }
        // Left slots are zeros.
        for (i, name) in cols.iter().enumerate() {
            if name.contains("_left_") {
                assert_eq!(row[i], 0.0, "{name}");
            }
        }
    }
}

#[test]
fn jigsaws_gripper_interpolates_within_a_frame() {
    // Frame 0 covers ticks 0..=33 (34 ticks); make half of them active.
    let mut log = straight_log(2000);
    for r in log.records.iter_mut() {
        r.flags = if r.tick < 17 {
            tick_flags::INSTRUMENT_ACTIVE
        } else {
            0
        };
    }
    let rows = parse_rows(&jigsaws_kinematics(&log, 30.0).unwrap());
    let g = rows[0][col("slave_right_gripper_angle")];
    let mid = 0.5 * (GRIPPER_OPEN_RAD + GRIPPER_CLOSED_RAD);
    assert!((g - mid).abs() < 1e-6, "half active: {g}");
    assert_eq!(rows[1][col("slave_right_gripper_angle")], GRIPPER_OPEN_RAD);
}

#[test]
fn jigsaws_survives_dropped_ticks_and_a_garbage_device() {
    let mut log = straight_log(2000);
    // Drop 0.2 s of records (whole frames go missing) and make the device send NaN for a while.
    log.records.retain(|r| !(500..700).contains(&r.tick));
    for r in log.records.iter_mut() {
        if (1200..1300).contains(&r.tick) {
            r.device_pos_in_world_m = [f64::NAN; 3];
        }
    }
    let rows = parse_rows(&jigsaws_kinematics(&log, 30.0).unwrap());
    assert_eq!(rows.len(), 60);
    for (k, row) in rows.iter().enumerate() {
        assert!(row.iter().all(|v| v.is_finite()), "row {k}");
        let t_mid = (k as f64 + 0.5) / 30.0;
        for slot in ["master_right", "slave_right"] {
            let x = row[col(&format!("{slot}_pos_x"))];
            assert!(
                (x - (X0 + SPEED_M_PER_S * t_mid)).abs() < 1e-4,
                "row {k} {slot}: {x}"
            );
            let v = row[col(&format!("{slot}_vel_x"))];
            assert!((v - SPEED_M_PER_S).abs() < 1e-3, "row {k} {slot}: {v}");
        }
    }
}

#[test]
fn jigsaws_refuses_bad_rates_and_empty_logs() {
    let log = straight_log(2000);
    for rate in [0.0, -30.0, f64::NAN, f64::INFINITY, 2000.0] {
        let e = jigsaws_kinematics(&log, rate).unwrap_err();
        assert!(matches!(e, ExportError::BadRate { .. }), "{rate}: {e}");
        assert!(e.to_string().contains("case-7f3a"));
    }
    let empty = SessionLog {
        records: Vec::new(),
        ..straight_log(0)
    };
    let e = jigsaws_kinematics(&empty, 30.0).unwrap_err();
    assert!(matches!(e, ExportError::BadLog { .. }), "{e}");
    // Shorter than one frame.
    let e = jigsaws_kinematics(&straight_log(20), 30.0).unwrap_err();
    assert!(matches!(e, ExportError::BadLog { .. }), "{e}");
    // A trailing partial frame is dropped.
    assert_eq!(
        jigsaws_kinematics(&straight_log(2020), 30.0)
            .unwrap()
            .lines()
            .count(),
        60
    );
    // Deterministic.
    assert_eq!(
        jigsaws_kinematics(&log, 30.0).unwrap(),
        jigsaws_kinematics(&log, 30.0).unwrap()
    );
}

#[test]
fn jigsaws_files_and_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Warmup_B001.txt");
    let log = straight_log(2000);
    let sidecar = write_jigsaws(&log, 30.0, &path).unwrap();
    assert_eq!(sidecar, jigsaws_sidecar_path(&path));
    assert_eq!(sidecar, dir.path().join("Warmup_B001.columns.txt"));
    let data = std::fs::read_to_string(&path).unwrap();
    assert_eq!(data, jigsaws_kinematics(&log, 30.0).unwrap());
    let desc = std::fs::read_to_string(&sidecar).unwrap();
    for (i, c) in jigsaws_columns().iter().enumerate() {
        assert!(desc.contains(&format!("\n{} {c}\n", i + 1)), "{c}");
    }
    assert!(desc.contains("case-7f3a"));

    let missing = dir.path().join("no-such-dir").join("k.txt");
    let e = write_jigsaws(&log, 30.0, &missing).unwrap_err();
    assert!(matches!(e, ExportError::Write { .. }));
    assert!(e.to_string().contains("no-such-dir"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// xAPI
// ---------------------------------------------------------------------------------------------

const SESSION_ID: &str = "3F2504E0-4F89-41D3-9A0C-0305E82C3301";

fn metric(key: &str, value: f64, better: Better, limit: Option<f64>) -> MetricValue {
    let benchmark = limit.map(|limit| MetricBound {
        limit,
        expert_mean: limit * 0.8,
        expert_sd: 0.1,
        experts: 5,
    });
    let within = benchmark.as_ref().map(|b| b.admits(value, better));
    MetricValue {
        key: key.into(),
        label: key.replace('_', " "),
        unit: String::new(),
        value,
        better,
        benchmark,
        within,
    }
}

/// A card with 3 bounded metrics, 2 within, and one without a bound.
fn card(benchmarked: bool, pass: bool) -> ScoreCard {
    let limit = |l: f64| benchmarked.then_some(l);
    let metrics = vec![
        metric("time_s", 40.0, Better::Lower, limit(60.0)),
        metric("path_length_m", 0.5, Better::Lower, limit(0.8)),
        metric(
            "peak_force_n",
            if pass { 2.0 } else { 4.5 },
            Better::Lower,
            limit(3.0),
        ),
        metric("ldlj", -7.0, Better::Higher, None),
    ];
    let failed_metrics = metrics
        .iter()
        .filter(|m| m.within == Some(false))
        .map(|m| m.key.clone())
        .collect::<Vec<_>>();
    ScoreCard {
        scenario: "resection".into(),
        case_id: "case-7f3a".into(),
        software_version: "0.1.0".into(),
        started_unix_s: 1_798_675_200,
        duration_s: 72.345,
        safe_force_n: 3.0,
        metrics,
        landmarks: Vec::new(),
        benchmark: benchmarked.then(|| "resection (5 experts)".to_string()),
        passed: benchmarked.then_some(failed_metrics.is_empty()),
        failed_metrics,
        log_complete: true,
        replay: None,
    }
}

fn actor() -> XapiActor {
    XapiActor {
        name: "Resident 12".into(),
        mbox: Some("resident12@example.org".into()),
        account: None,
    }
}

/// 8-4-4-4-12 lower-case hex with an RFC 4122 variant nibble and a version 1-5 (what strict
/// LRS validators accept).
fn is_strict_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == b'-'
            } else {
                c.is_ascii_digit() || (b'a'..=b'f').contains(&c)
            }
        })
        && (b'1'..=b'5').contains(&b[14])
        && [b'8', b'9', b'a', b'b'].contains(&b[19])
}

/// `YYYY-MM-DDThh:mm:ss(.fff)Z`.
fn is_iso_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && s.ends_with('Z')
}

/// An ISO 8601 time duration `PT[nH][nM][n[.f]S]`, returned in seconds.
fn parse_iso_duration(s: &str) -> Option<f64> {
    let mut rest = s.strip_prefix("PT")?;
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    for (unit, scale) in [('H', 3600.0), ('M', 60.0), ('S', 1.0)] {
        if let Some(at) = rest.find(unit) {
            let n = &rest[..at];
            if n.is_empty() || !n.chars().all(|c| c.is_ascii_digit() || c == '.') {
                return None;
            }
            if unit != 'S' && n.contains('.') {
                return None;
            }
            total += n.parse::<f64>().ok()? * scale;
            rest = &rest[at + 1..];
        }
    }
    rest.is_empty().then_some(total)
}

/// Every object key in `v`, with the path to it.
fn keys(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                out.push((path.to_string(), k.clone()));
                keys(x, &format!("{path}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                keys(x, &format!("{path}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Checks one statement against the xAPI 1.0.3 required fields and formats.
fn check_statement(s: &Value, card: &ScoreCard) {
    assert!(is_strict_uuid(s["id"].as_str().unwrap()), "{}", s["id"]);
    // Actor: an Agent with exactly one identifier.
    let a = &s["actor"];
    assert_eq!(a["objectType"], "Agent");
    let ifis = ["mbox", "mbox_sha1sum", "openid", "account"]
        .iter()
        .filter(|k| a.get(**k).is_some())
        .count();
    assert_eq!(ifis, 1, "{a}");
    if let Some(m) = a.get("mbox") {
        assert!(m.as_str().unwrap().starts_with("mailto:"));
    }
    // Verb: an IRI and a display language map.
    let verb = s["verb"]["id"].as_str().unwrap();
    assert!(verb.starts_with("http://adlnet.gov/expapi/verbs/"));
    assert!(s["verb"]["display"]["en-US"].is_string());
    // Object: an Activity.
    assert_eq!(s["object"]["objectType"], "Activity");
    let id = s["object"]["id"].as_str().unwrap();
    assert!(
        id.starts_with("https://") && id.ends_with(&card.scenario),
        "{id}"
    );
    let def = &s["object"]["definition"];
    assert_eq!(
        def["type"],
        "http://adlnet.gov/expapi/activities/simulation"
    );
    assert!(def["name"]["en-US"].is_string());
    assert!(def["description"]["en-US"].is_string());
    // Result.
    let r = &s["result"];
    assert_eq!(r["completion"], json!(card.log_complete));
    let d = parse_iso_duration(r["duration"].as_str().unwrap()).unwrap();
    assert!((d - card.duration_s).abs() < 1e-3, "{}", r["duration"]);
    if let Some(score) = r.get("score") {
        let scaled = score["scaled"].as_f64().unwrap();
        let (raw, min, max) = (
            score["raw"].as_f64().unwrap(),
            score["min"].as_f64().unwrap(),
            score["max"].as_f64().unwrap(),
        );
        assert!((0.0..=1.0).contains(&scaled));
        assert!(min <= raw && raw <= max && min < max);
        assert!((scaled - (raw - min) / (max - min)).abs() < 1e-12);
    }
    // Context.
    let c = &s["context"];
    assert_eq!(c["registration"], SESSION_ID.to_ascii_lowercase());
    let ext = c["extensions"].as_object().unwrap();
    for k in ext.keys() {
        assert!(k.starts_with("https://"), "extension keys are IRIs: {k}");
    }
    let ext_of = |suffix: &str| {
        ext.iter()
            .find(|(k, _)| k.ends_with(suffix))
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(ext_of("/case-id"), json!(card.case_id));
    assert_eq!(ext_of("/software-version"), json!(card.software_version));
    let metrics = ext_of("/metrics");
    for m in &card.metrics {
        assert_eq!(metrics[&m.key]["value"], json!(m.value), "{}", m.key);
    }
    // Timestamp.
    let ts = s["timestamp"].as_str().unwrap();
    assert!(is_iso_timestamp(ts), "{ts}");
    assert_eq!(ts, "2026-12-31T00:00:00Z");
}

/// Names only where the actor and the activity definition hold them; no patient anywhere.
fn check_pseudonymous(statements: &Value) {
    let text = statements.to_string().to_ascii_lowercase();
    assert!(!text.contains("patient"), "{text}");
    let mut all = Vec::new();
    keys(statements, "", &mut all);
    for (path, key) in all {
        let k = key.to_ascii_lowercase();
        for bad in ["patient", "birth", "dob", "mrn", "sex"] {
            assert!(!k.contains(bad), "{path}/{key}");
        }
        if k == "name" {
            assert!(
                path.ends_with("/actor")
                    || path.ends_with("/account")
                    || path.ends_with("/definition"),
                "a name at {path}"
            );
        }
    }
}

fn verbs(statements: &Value) -> Vec<String> {
    statements
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["verb"]["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn xapi_failed_session() {
    let card = card(true, false);
    let st = xapi_statements(&card, &actor(), SESSION_ID);
    assert_eq!(verbs(&st), [VERB_COMPLETED, VERB_FAILED]);
    for s in st.as_array().unwrap() {
        check_statement(s, &card);
        // 2 of the 3 bounded metrics within.
        let score = &s["result"]["score"];
        assert_eq!(score["raw"], 2);
        assert_eq!(score["max"], 3);
        assert_eq!(score["min"], 0);
        assert!((score["scaled"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-12);
    }
    assert_eq!(st[1]["result"]["success"], false);
    assert!(st[0]["result"].get("success").is_none());
    assert_eq!(st[0]["actor"]["mbox"], "mailto:resident12@example.org");
    check_pseudonymous(&st);
    // Distinct, deterministic ids.
    assert_ne!(st[0]["id"], st[1]["id"]);
    assert_eq!(st, xapi_statements(&card, &actor(), SESSION_ID));
}

#[test]
fn xapi_passed_session() {
    let card = card(true, true);
    let st = xapi_statements(&card, &actor(), SESSION_ID);
    assert_eq!(verbs(&st), [VERB_COMPLETED, VERB_PASSED]);
    for s in st.as_array().unwrap() {
        check_statement(s, &card);
        assert_eq!(s["result"]["score"]["scaled"], 1.0);
    }
    assert_eq!(st[1]["result"]["success"], true);
    check_pseudonymous(&st);
}

#[test]
fn xapi_without_a_benchmark_and_an_unfinished_session() {
    let mut card = card(false, true);
    card.log_complete = false;
    let account = XapiActor {
        name: String::new(),
        mbox: Some("ignored@example.org".into()),
        account: Some(("https://lms.example.org".into(), "trainee-0042".into())),
    };
    let st = xapi_statements(&card, &account, SESSION_ID);
    assert_eq!(verbs(&st), [VERB_ATTEMPTED]);
    let s = &st[0];
    check_statement(s, &card);
    assert!(s["result"].get("score").is_none());
    assert!(s["result"].get("success").is_none());
    assert_eq!(s["result"]["completion"], false);
    assert_eq!(
        s["actor"]["account"],
        json!({"homePage": "https://lms.example.org", "name": "trainee-0042"})
    );
    assert!(s["actor"].get("name").is_none());
    check_pseudonymous(&st);
}

#[test]
fn xapi_options_and_non_uuid_session_ids() {
    let card = card(true, false);
    let options = XapiOptions {
        activity_base: "https://training.example.org/sim/".into(),
        ..XapiOptions::default()
    };
    let st = xapi_statements_with(&card, &actor(), "session 12", &options);
    for s in st.as_array().unwrap() {
        assert_eq!(
            s["object"]["id"],
            "https://training.example.org/sim/resection"
        );
        assert!(is_strict_uuid(
            s["context"]["registration"].as_str().unwrap()
        ));
    }
    let other = xapi_statements_with(&card, &actor(), "session 13", &options);
    assert_ne!(st[0]["id"], other[0]["id"]);
    assert_ne!(
        st[0]["context"]["registration"],
        other[0]["context"]["registration"]
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("statements.json");
    write_xapi(&card, &actor(), "session 12", &options, &path).unwrap();
    let back: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(back, st);
    let bad = dir.path().join("missing").join("s.json");
    let e = write_xapi(&card, &actor(), "session 12", &options, &bad).unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// LRS
// ---------------------------------------------------------------------------------------------

/// One HTTP request as the server saw it.
struct Seen {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// Serves one request on a fresh port, answering `status` with `body` (built from the request).
fn serve_once(
    status: &'static str,
    answer: impl FnOnce(&Seen) -> String + Send + 'static,
) -> (String, JoinHandle<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap().to_string();
        let path = parts.next().unwrap().to_string();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            reader.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
        let mut body = Vec::new();
        if let Some(n) = headers.get("content-length") {
            body.resize(n.parse().unwrap(), 0);
            reader.read_exact(&mut body).unwrap();
        } else if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size).unwrap();
                let n = usize::from_str_radix(size.trim(), 16).unwrap();
                let mut chunk = vec![0; n + 2];
                reader.read_exact(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        }
        let seen = Seen {
            method,
            path,
            headers,
            body,
        };
        let answer = answer(&seen);
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{answer}",
            answer.len()
        )
        .unwrap();
        stream.flush().unwrap();
        seen
    });
    (format!("http://{addr}/xapi/"), handle)
}

fn lrs(endpoint: &str) -> LrsConfig {
    LrsConfig {
        endpoint: endpoint.to_string(),
        username: Some("key".into()),
        password: Some("s3cret".into()),
        timeout: Duration::from_secs(20),
    }
}

#[test]
fn lrs_post_returns_the_ids() {
    let card = card(true, false);
    let statements = xapi_statements(&card, &actor(), SESSION_ID);
    let (endpoint, server) = serve_once("200 OK", |seen| {
        let posted: Value = serde_json::from_slice(&seen.body).unwrap();
        let ids: Vec<Value> = posted
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].clone())
            .collect();
        Value::Array(ids).to_string()
    });
    let ids = post_statements(&lrs(&endpoint), &statements).unwrap();
    let seen = server.join().unwrap();

    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/xapi/statements");
    assert_eq!(seen.headers["x-experience-api-version"], "1.0.3");
    assert!(seen.headers["content-type"].starts_with("application/json"));
    // "key:s3cret" in base64.
    assert_eq!(seen.headers["authorization"], "Basic a2V5OnMzY3JldA==");
    let posted: Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(posted, statements);
    for s in posted.as_array().unwrap() {
        for field in [
            "id",
            "actor",
            "verb",
            "object",
            "result",
            "context",
            "timestamp",
        ] {
            assert!(s.get(field).is_some(), "{field}");
        }
    }
    let want: Vec<String> = statements
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, want);
}

#[test]
fn lrs_without_credentials_sends_no_authorization() {
    let (endpoint, server) = serve_once("200 OK", |_| r#"["a"]"#.to_string());
    let config = LrsConfig {
        username: None,
        password: None,
        ..lrs(&endpoint)
    };
    let ids = post_statements(&config, &json!([{"id": "a"}])).unwrap();
    assert_eq!(ids, ["a"]);
    assert!(!server.join().unwrap().headers.contains_key("authorization"));
}

#[test]
fn lrs_refusal_carries_the_status_and_body() {
    let (endpoint, server) = serve_once("401 Unauthorized", |_| {
        r#"{"error":"bad credentials"}"#.to_string()
    });
    let e = post_statements(&lrs(&endpoint), &json!([])).unwrap_err();
    server.join().unwrap();
    match &e {
        ExportError::LrsStatus {
            endpoint: at,
            status,
            body,
        } => {
            assert_eq!(*status, 401);
            assert!(body.contains("bad credentials"));
            assert!(at.contains("/xapi/statements"));
        }
        other => panic!("expected a status error, got {other:?}"),
    }
    assert!(e.to_string().contains("401"));
}

#[test]
fn lrs_error_body_is_cut_to_500_characters() {
    let (endpoint, server) = serve_once("500 Internal Server Error", |_| "x".repeat(2000));
    let e = post_statements(&lrs(&endpoint), &json!([])).unwrap_err();
    server.join().unwrap();
    let ExportError::LrsStatus { status, body, .. } = e else {
        panic!("expected a status error, got {e:?}");
    };
    assert_eq!(status, 500);
    assert_eq!(body.len(), 500);
}

#[test]
fn lrs_answer_that_is_not_ids_is_an_error() {
    let (endpoint, server) = serve_once("200 OK", |_| r#"{"ok":true}"#.to_string());
    let e = post_statements(&lrs(&endpoint), &json!([])).unwrap_err();
    server.join().unwrap();
    assert!(matches!(e, ExportError::LrsResponse { .. }), "{e}");
}

#[test]
fn lrs_nobody_listening_names_the_endpoint() {
    // A port that was free a moment ago; nothing listens on it now.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}/xapi");
    let e = post_statements(&lrs(&endpoint), &json!([])).unwrap_err();
    assert!(matches!(e, ExportError::LrsConnection { .. }), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("http://127.0.0.1:{port}/xapi/statements")),
        "{e}"
    );
}
