//! The dashboard under load (the check): 50 concurrent clients logged in as an
//! instructor read session pages, the cohort page, the home page and replays from
//! `haptwin serve` on loopback for 30 s, with zero errors. Requests per second and latency are
//! printed as figures, never asserted.

use haptwin::bench::serve::RouteKind;
use haptwin::bench::{bench_serve, ServeBenchOptions};

#[test]
fn fifty_clients_read_session_pages_for_thirty_seconds_without_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let r = bench_serve(&ServeBenchOptions {
        clients: 50,
        seconds: 30.0,
        out_dir: dir.path().to_path_buf(),
        ..ServeBenchOptions::default()
    })
    .unwrap();
    println!("{}", serde_json::to_string_pretty(&r).unwrap());
    assert_eq!(r.store, "sqlite");
    assert_eq!(r.clients, 50);
    assert!(r.sessions >= 50, "{} sessions", r.sessions);
    assert_eq!(r.errors, 0, "errors: {:#?}", r.first_errors);
    assert!(r.first_errors.is_empty());
    assert!(r.requests > 0);
    for kind in RouteKind::ALL {
        let f = r.route(kind).unwrap();
        assert!(f.requests > 0, "no {} requests", kind.name());
        assert_eq!(f.errors, 0, "{}", kind.name());
        assert!(f.bytes > 0, "{}: nothing served", kind.name());
    }
    assert_eq!(r.routes.iter().map(|f| f.requests).sum::<u64>(), r.requests);
    // The SQLite file is removed afterwards; the recorded sessions stay in the folder.
    assert!(!dir.path().join("bench-serve.db").exists());
}
