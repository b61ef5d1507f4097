//! Unit tests of records and merging, on synthetic records.

use super::*;

/// A passing record of `seed` with a fault and a behaviour.
fn pass(seed: u64) -> SeedRecord {
    SeedRecord {
        seed,
        commit: "abc".into(),
        scenario_hash: format!("{seed:016x}"),
        trace_hash: format!("{:016x}", seed * 7),
        outcome: Outcome::Pass,
        first_violation: None,
        violations: Vec::new(),
        broken: Vec::new(),
        sim_ms: 1_000 + seed,
        wall_ms: 10,
        faults_drawn: vec!["redis_slow_reply".into()],
        faults: BTreeMap::from([
            ("redis_slow_reply".to_owned(), seed % 3),
            ("server_crash".to_owned(), 0),
        ]),
        behaviors: BTreeMap::from([("normal".to_owned(), 2), ("flood".to_owned(), seed % 2)]),
        checks: 100,
        matches: 1,
        coverage: BTreeMap::from([
            ("R5".to_owned(), seed % 2),
            ("W7".to_owned(), u64::from(seed == 4)),
        ]),
        determinism_checked: false,
        nondeterministic: None,
        shrunk: None,
    }
}

/// A failing record of `seed` in failure group `signature`.
fn fail(seed: u64, invariant: &str, signature: &str) -> SeedRecord {
    let violation = ViolationRecord {
        invariant: invariant.into(),
        at_ms: 5_000,
        detail: format!("player of seed {seed} lost"),
    };
    SeedRecord {
        outcome: Outcome::Fail,
        first_violation: Some(violation.clone()),
        violations: vec![violation],
        broken: vec![invariant.into()],
        shrunk: Some(ShrunkRecord {
            signature: signature.into(),
            description: format!("{invariant}: player <id> lost"),
            needs: "faults: server_crash; behaviours: none".into(),
            players: 4,
            servers: 2,
            scenario_hash: "00".into(),
            runs: 12,
            cut_by_time: false,
        }),
        ..pass(seed)
    }
}

fn header(start: u64, seeds: u64, shard: Shard) -> Line {
    Line::Campaign(CampaignHeader {
        format: FORMAT_VERSION,
        commit: "abc".into(),
        start,
        seeds,
        shard,
        args: String::new(),
        check_determinism: false,
    })
}

fn options() -> RenderOptions {
    RenderOptions {
        header: "header".into(),
        wall_secs: None,
        invariants: vec!["7_no_one_lost".into(), "8_match_in_time".into()],
        behaviors: vec!["normal".into(), "flood".into()],
        replay_args: String::new(),
        timelines: None,
    }
}

/// The records of seeds `0..40` with failures at 3, 7, 22 (one bug) and 15 (another).
fn campaign() -> Vec<SeedRecord> {
    (0..40)
        .map(|seed| match seed {
            3 | 7 | 22 => fail(seed, "7_no_one_lost", "aaaa0001"),
            15 => fail(seed, "8_match_in_time", "bbbb0002"),
            _ => pass(seed),
        })
        .collect()
}

/// Goal: shards partition a window exactly - every seed in one shard, none twice - and
/// `len` agrees with the seeds listed, also for windows not divisible by the count.
#[test]
fn shards_partition_the_window() {
    for count in 1..=7 {
        let mut all: Vec<u64> = Vec::new();
        for index in 1..=count {
            let shard = Shard { index, count };
            let seeds: Vec<u64> = shard.seeds(100, 23).collect();
            assert_eq!(seeds.len() as u64, shard.len(23), "{shard}");
            assert!(seeds.iter().all(|seed| shard.contains(100, *seed)));
            all.extend(seeds);
        }
        all.sort_unstable();
        assert_eq!(all, (100..123).collect::<Vec<_>>(), "count {count}");
    }
    assert_eq!(Shard::parse("3/4"), Ok(Shard { index: 3, count: 4 }));
    for bad in ["0/4", "5/4", "1/0", "x/2", "2"] {
        assert!(Shard::parse(bad).is_err(), "{bad}");
    }
}

/// Goal: four shards' files merged give the same summary as one unsharded run of the same
/// records, whatever order the records arrive in.
#[test]
fn merged_shards_equal_one_run() {
    let records = campaign();
    let mut one = Summary::default();
    for record in &records {
        one.add(record);
    }
    let files: Vec<Vec<Line>> = (1..=4)
        .map(|index| {
            let shard = Shard { index, count: 4 };
            let mut lines = vec![header(0, 40, shard)];
            // Workers finish out of order: reverse each shard's records.
            lines.extend(
                records
                    .iter()
                    .rev()
                    .filter(|r| shard.contains(0, r.seed))
                    .map(|r| Line::Seed(Box::new(r.clone()))),
            );
            lines
        })
        .collect();
    let (merged, coverage, headers) = merge(&files);
    assert_eq!(merged, one);
    assert_eq!(render(&merged, &options()), render(&one, &options()));
    assert!(coverage.problems.is_empty(), "{:?}", coverage.problems);
    assert_eq!(headers.len(), 4);
    assert_eq!(merged.faults.get("redis_slow_reply"), Some(&(26, 39)));
    assert_eq!(
        merged.faults.get("server_crash"),
        None,
        "zero counts are not seeds"
    );
    assert_eq!(merged.behaviors.get("flood"), Some(&(20, 20)));
    assert_eq!(merged.coverage.get("R5"), Some(&(20, 20)));
    assert_eq!(merged.coverage.get("W7"), Some(&(1, 1)));
    let table = render(&merged, &options());
    assert!(table.contains("R5 periodic resync"), "{table}");
    assert!(
        crate::coverage::gate_report(&merged.coverage).contains("R1 match round was never reached"),
        "the merged gate sees what one run's gate sees"
    );
}

/// Goal: failures of one signature are one row, with its smallest seed, every seed of the
/// group, and the replay command of the smallest seed; another signature is another row.
#[test]
fn failures_group_by_signature() {
    let mut summary = Summary::default();
    for record in campaign().iter().rev() {
        summary.add(record);
    }
    let groups = summary.groups();
    let rows: Vec<(String, u64, Vec<u64>)> = groups
        .iter()
        .map(|g| (g.key.clone(), g.first.seed, g.seeds.clone()))
        .collect();
    assert_eq!(
        rows,
        [
            ("aaaa0001".to_owned(), 3, vec![3, 7, 22]),
            ("bbbb0002".to_owned(), 15, vec![15]),
        ]
    );
    let text = render(&summary, &options());
    assert!(text.contains("failures: 2 distinct, 4 seeds"), "{text}");
    assert!(text.contains("FAILED 7_no_one_lost in 3 seeds, smallest seed 3"));
    assert!(text.contains("  seeds: 3, 7, 22\n"));
    assert!(text.contains("replay: match-sim replay --seed 3\n"));
    assert!(!text.contains("--seed 7\n"));
    assert!(text.contains("7_no_one_lost                BROKEN in 3 seeds"));
    assert!(text.contains("8_match_in_time              BROKEN in 1 seeds"));
}

/// Goal: merge reports a missing shard, a shard that stopped early, and a seed recorded
/// twice (counted once), instead of printing a summary that silently covers less.
#[test]
fn merge_reports_gaps_and_duplicates() {
    let records = campaign();
    let shard = |index| Shard { index, count: 3 };
    let lines = |index: u64, keep: usize| -> Vec<Line> {
        let mut lines = vec![header(0, 40, shard(index))];
        lines.extend(
            records
                .iter()
                .filter(|r| shard(index).contains(0, r.seed))
                .take(keep)
                .map(|r| Line::Seed(Box::new(r.clone()))),
        );
        lines
    };
    let mut first = lines(1, 100);
    first.push(Line::Seed(Box::new(records[0].clone())));
    let (summary, coverage, _) = merge(&[first, lines(2, 5)]);
    assert_eq!(coverage.duplicates, [0]);
    assert_eq!(summary.seeds, 14 + 5);
    assert_eq!(
        coverage.problems,
        [
            "shard 2/3 of seeds 0..40 ran 5 of its 13 seeds",
            "seeds 0..40: no file for shard 3/3"
        ]
    );
}

/// Goal: records survive their JSON line, and a file with unknown fields (a newer writer)
/// or missing optional fields (an older one) still parses; a broken line names its number.
#[test]
fn records_round_trip_and_stay_compatible() {
    let record = fail(9, "7_no_one_lost", "aaaa0001");
    let line = Line::Seed(Box::new(record.clone()));
    assert_eq!(parse(&to_line(&line)).unwrap(), [line]);
    let minimal = r#"{"type":"seed","seed":4,"commit":"c","scenario_hash":"h","outcome":"pass","first_violation":null,"sim_ms":1,"wall_ms":2,"future_field":{"x":1}}"#;
    let parsed = parse(&format!("\n{minimal}\n")).unwrap();
    assert!(matches!(&parsed[..], [Line::Seed(r)] if r.seed == 4 && r.coverage.is_empty()));
    let error = parse("{}\nnot json").unwrap_err();
    assert!(error.starts_with("line 1:"), "{error}");
}
