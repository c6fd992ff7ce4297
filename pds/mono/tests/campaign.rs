//! A small campaign against the real binaries (`isolated`, `mono`) and the repository's
//! `system.xml`: the isolated composition contains every fault that kills or hangs a driver (all
//! runs survive, nothing leaks, no client buffer changes), and the monolithic composition reports
//! the same faults honestly as what they are there: the end of the whole system.

use mono::campaign::catalogue::Kind;
use mono::campaign::judge::Verdict;
use mono::campaign::report::{corrupted_buffers, leaked_pages, summary_line, tally};
use mono::campaign::schedule::Config;
use mono::campaign::session::Composition;
use mono::campaign::{run_campaign, Binaries};
use std::path::Path;

#[test]
fn isolation_contains_every_crash_and_hang_and_the_monolith_does_not() {
    let bins = Binaries {
        isolated: env!("CARGO_BIN_EXE_isolated").into(),
        mono: env!("CARGO_BIN_EXE_mono-campaign").into(),
        system: Path::new(env!("CARGO_MANIFEST_DIR")).join("../../system.xml"),
        sel4: None,
    };
    let kinds = vec![Kind::Panic, Kind::WildRead, Kind::WildWrite, Kind::Hang];
    // A test build is several times slower than the campaign's release build: wider windows.
    let config = Config {
        runs: 24,
        seed: 7,
        jobs: 2,
        window_ns: 600_000_000,
        kinds: kinds.clone(),
        ..Config::default()
    };
    let c = run_campaign(&bins, &config).unwrap();
    eprintln!("{}", summary_line(&c));
    let failures: Vec<String> = c
        .results
        .iter()
        .filter(|r| r.composition == Composition::Isolated && !r.survived())
        .map(|r| format!("run {} {:?}: {:?}", r.run.id, r.run.target, r.verdict))
        .collect();
    let iso = tally(&c, Composition::Isolated, |_| true);
    assert!(failures.is_empty(), "isolated failures: {failures:#?}");
    assert!(
        iso.runs >= 20,
        "judged {} of 24 isolated runs: {:#?}",
        iso.runs,
        c.unjudged
    );
    assert_eq!(leaked_pages(&c, Composition::Isolated), 0);
    assert_eq!(corrupted_buffers(&c, Composition::Isolated), 0);
    assert!(
        iso.visible > 0 && !iso.recoveries.is_empty(),
        "clients saw the faults and recovered"
    );
    // Monolithic: every one of these faults is the end of the process, and the report says how.
    let mono: Vec<_> = c
        .results
        .iter()
        .filter(|r| r.composition == Composition::Monolithic)
        .collect();
    assert!(
        mono.len() >= 20,
        "judged {} of 24 monolithic runs",
        mono.len()
    );
    for r in &mono {
        let Verdict::Failed(why) = &r.verdict else {
            panic!(
                "run {} survived {:?} in one process",
                r.run.id, r.run.target
            );
        };
        let expected = match r.run.target.kind {
            Kind::Panic => "SIGABRT",
            Kind::WildRead | Kind::WildWrite => "SIGSEGV",
            _ => "hung",
        };
        assert!(
            why.contains(expected),
            "run {} ({:?}): {why}",
            r.run.id,
            r.run.target.kind
        );
    }
    for kind in kinds {
        for comp in [Composition::Isolated, Composition::Monolithic] {
            assert!(
                tally(&c, comp, |r| r.run.target.kind == kind).runs > 0,
                "{kind:?} never ran in {comp:?}"
            );
        }
    }
}
