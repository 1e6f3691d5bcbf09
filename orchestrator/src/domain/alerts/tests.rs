use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::evaluate::STALE;
use super::*;
use crate::domain::job::Phase;
use crate::domain::Dur;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap()
}

/// A report every 2 s from `t0`: (records_in, records_out, lag) per report.
fn reports(figures: &[(u64, u64, i64)]) -> Vec<Report> {
    figures
        .iter()
        .enumerate()
        .map(|(i, &(rin, rout, lag))| Report {
            generation: 3,
            at: t0() + Duration::seconds(2 * i as i64),
            tasks: vec![TaskFigures {
                task: 0,
                records_in: rin,
                records_out: rout,
                lag: BTreeMap::from([("orders/0".to_owned(), lag)]),
                ..Default::default()
            }],
        })
        .collect()
}

fn rule(yaml: &str) -> AlertRule {
    serde_saphyr::from_str(yaml).unwrap()
}

fn input<'a>(reports: &'a [Report], now: DateTime<Utc>) -> Input<'a> {
    Input {
        now,
        phase: Phase::Running,
        generation: Some(3),
        failure: None,
        reports,
    }
}

fn last_at(r: &[Report]) -> DateTime<Utc> {
    r.last().unwrap().at
}

#[test]
fn rules_read_as_written() {
    let r = rule("name: lag\nwhen: { lag_above: 1000 }\nfor: 30s\nseverity: critical\nnotify: { subject: alerts.orders }\n");
    assert_eq!(r.when, Condition::LagAbove(1000));
    assert_eq!(r.hold, Dur::from_secs(30));
    assert_eq!(r.severity, Severity::Critical);
    assert_eq!(r.notify.subject.as_deref(), Some("alerts.orders"));
    let r = rule("name: stuck\nwhen: no_output\n");
    assert_eq!(r.when, Condition::NoOutput);
    assert_eq!(r.hold, Dur::from_secs(60), "`for` defaults to 1m");
    assert_eq!(r.severity, Severity::Warning);
    let r = rule("name: r\nwhen: { restarts: { at_least: 3, within: 10m } }\n");
    assert_eq!(
        r.when,
        Condition::Restarts(RestartsWithin {
            at_least: 3,
            within: Dur::from_secs(600)
        })
    );
}

#[test]
fn bad_rules_name_their_field() {
    let rules = vec![
        rule("name: 'a b'\nwhen: no_input\n"),
        rule("name: x\nwhen: { restarts: { at_least: 0, within: 0s } }\n"),
        rule("name: x\nwhen: { checkpoint_failures_in_a_row: 0 }\nnotify: { webhook: 'ftp://x', subject: 'weir.cmd.victim.job.delete' }\n"),
        rule("name: y\nwhen: { dead_letter_rate_above: -1 }\nfor: 4h\n"),
    ];
    let fields: Vec<String> = rule::problems(&rules)
        .into_iter()
        .map(|p| p.field)
        .collect();
    assert_eq!(
        fields,
        [
            "alerts[0].name",
            "alerts[1].when.restarts.at_least",
            "alerts[1].when.restarts.within",
            "alerts[2].name",
            "alerts[2].when.checkpoint_failures_in_a_row",
            "alerts[2].notify.webhook",
            "alerts[2].notify.subject",
            "alerts[3].for",
            "alerts[3].when.dead_letter_rate_above",
        ]
    );
    assert!(serde_saphyr::from_str::<AlertRule>("name: x\nwhen: sometimes\n").is_err());
}

#[test]
fn lag_fires_only_after_holding_for_its_for_and_resolves_at_once() {
    let lag = rule("name: lag\nwhen: { lag_above: 100 }\nfor: 10s\n");
    // Above 100 from the third report (t0+4s) on.
    let r = reports(&[
        (0, 0, 10),
        (10, 10, 50),
        (20, 20, 200),
        (30, 30, 300),
        (40, 40, 400),
        (50, 50, 500),
        (60, 60, 600),
    ]);
    // Held 4s..12s = 8s < 10s.
    assert_eq!(
        evaluate(&lag, false, &input(&r, last_at(&r))),
        Verdict::Keep
    );
    let mut r = r;
    r.extend(reports(&[(0, 0, 0); 9]).into_iter().skip(7).map(|mut x| {
        x.tasks[0].lag.insert("orders/0".into(), 700);
        x
    }));
    // Now 8 reports of 9 above: 4s..16s = 12s >= 10s.
    match evaluate(&lag, false, &input(&r, last_at(&r))) {
        Verdict::Fire {
            since,
            value,
            message,
        } => {
            assert_eq!(since, t0() + Duration::seconds(4));
            assert_eq!(value, Some(700.0));
            assert!(message.contains("700"), "{message}");
        }
        v => panic!("{v:?}"),
    }
    // Firing already: nothing new while it holds.
    assert_eq!(evaluate(&lag, true, &input(&r, last_at(&r))), Verdict::Keep);
    // One report at or below the threshold resolves it.
    let mut ok = r.clone();
    let mut next = ok.last().unwrap().clone();
    next.at += Duration::seconds(2);
    next.tasks[0].lag.insert("orders/0".into(), 100);
    ok.push(next);
    assert!(matches!(
        evaluate(&lag, true, &input(&ok, last_at(&ok))),
        Verdict::Resolve { value: Some(v), .. } if v == 100.0
    ));
    assert_eq!(
        evaluate(&lag, false, &input(&ok, last_at(&ok))),
        Verdict::Keep
    );
}

#[test]
fn a_break_in_the_condition_restarts_the_hold() {
    let lag = rule("name: lag\nwhen: { lag_above: 100 }\nfor: 6s\n");
    let r = reports(&[
        (0, 0, 500),
        (0, 0, 500),
        (0, 0, 500),
        (0, 0, 0),
        (0, 0, 500),
        (0, 0, 500),
    ]);
    // Held only 8s..10s since the break.
    assert_eq!(
        evaluate(&lag, false, &input(&r, last_at(&r))),
        Verdict::Keep
    );
}

#[test]
fn no_output_means_records_wait_or_arrive_and_nothing_is_written() {
    let stuck = rule("name: stuck\nwhen: no_output\nfor: 4s\n");
    // A stalled sink: reads stop too, but lag grows.
    let r = reports(&[
        (100, 100, 0),
        (100, 100, 30),
        (100, 100, 60),
        (100, 100, 90),
    ]);
    match evaluate(&stuck, false, &input(&r, last_at(&r))) {
        Verdict::Fire { since, message, .. } => {
            assert_eq!(since, t0(), "from the report before the first stuck one");
            assert!(message.contains("no output for 6s"), "{message}");
        }
        v => panic!("{v:?}"),
    }
    // An idle source is not a stuck job.
    let idle = reports(&[(100, 100, 0), (100, 100, 0), (100, 100, 0), (100, 100, 0)]);
    assert_eq!(
        evaluate(&stuck, false, &input(&idle, last_at(&idle))),
        Verdict::Keep
    );
    // Output again resolves it.
    let mut back = r.clone();
    back.extend(reports(&[(0, 0, 0); 5]).into_iter().skip(4).map(|mut x| {
        x.tasks[0].records_in = 190;
        x.tasks[0].records_out = 190;
        x
    }));
    assert!(matches!(
        evaluate(&stuck, true, &input(&back, last_at(&back))),
        Verdict::Resolve { .. }
    ));
}

#[test]
fn no_input_is_a_heartbeat_on_the_sources() {
    let hb = rule("name: hb\nwhen: no_input\nfor: 4s\n");
    let idle = reports(&[(100, 100, 0), (100, 100, 0), (100, 100, 0), (100, 100, 0)]);
    assert!(matches!(
        evaluate(&hb, false, &input(&idle, last_at(&idle))),
        Verdict::Fire { .. }
    ));
    let flowing = reports(&[(100, 100, 0), (110, 110, 0), (120, 120, 0), (130, 130, 0)]);
    assert_eq!(
        evaluate(&hb, false, &input(&flowing, last_at(&flowing))),
        Verdict::Keep
    );
}

#[test]
fn rates_windows_and_in_a_row_counts() {
    let mut r = reports(&[(0, 0, 0); 6]);
    for (i, x) in r.iter_mut().enumerate() {
        x.tasks[0].dead_lettered = 30 * i as u64; // 15 a second
        x.tasks[0].restarts = i as u32 / 2; // 0,0,1,1,2,2
        x.tasks[0].checkpoint_failures_in_row = i as u32;
        x.tasks[0].watermark_ms = Some(x.at.timestamp_millis() - 90_000);
    }
    let now = last_at(&r);
    let dlq = rule("name: d\nwhen: { dead_letter_rate_above: 10 }\nfor: 0s\n");
    assert!(matches!(
        evaluate(&dlq, false, &input(&r, now)),
        Verdict::Fire { value: Some(v), .. } if (v - 15.0).abs() < 1e-9
    ));
    let dlq = rule("name: d\nwhen: { dead_letter_rate_above: 20 }\nfor: 0s\n");
    assert_eq!(evaluate(&dlq, false, &input(&r, now)), Verdict::Keep);
    // 2 restarts since the generation started; 1 within the last 4 s.
    let restarts = rule("name: r\nwhen: { restarts: { at_least: 2, within: 1h } }\nfor: 0s\n");
    assert!(matches!(
        evaluate(&restarts, false, &input(&r, now)),
        Verdict::Fire { .. }
    ));
    let recent = rule("name: r\nwhen: { restarts: { at_least: 2, within: 4s } }\nfor: 0s\n");
    assert_eq!(evaluate(&recent, false, &input(&r, now)), Verdict::Keep);
    let cp = rule("name: c\nwhen: { checkpoint_failures_in_a_row: 5 }\nfor: 0s\n");
    assert!(matches!(
        evaluate(&cp, false, &input(&r, now)),
        Verdict::Fire { .. }
    ));
    let delay = rule("name: e\nwhen: { event_time_delay_above: 1m }\nfor: 0s\n");
    assert!(matches!(
        evaluate(&delay, false, &input(&r, now)),
        Verdict::Fire { value: Some(v), .. } if v == 90.0
    ));
    let delay = rule("name: e\nwhen: { event_time_delay_above: 2m }\nfor: 0s\n");
    assert_eq!(evaluate(&delay, false, &input(&r, now)), Verdict::Keep);
}

#[test]
fn stale_reports_and_other_generations_decide_nothing() {
    let lag = rule("name: lag\nwhen: { lag_above: 100 }\nfor: 0s\n");
    let r = reports(&[(0, 0, 500), (0, 0, 500)]);
    let late = last_at(&r) + STALE + Duration::seconds(1);
    assert_eq!(evaluate(&lag, false, &input(&r, late)), Verdict::Keep);
    assert_eq!(evaluate(&lag, true, &input(&r, late)), Verdict::Keep);
    let mut other = input(&r, last_at(&r));
    other.generation = Some(4);
    assert_eq!(evaluate(&lag, false, &other), Verdict::Keep);
}

#[test]
fn phases_decide_for_the_job_state_rules_and_hold_metric_alerts_during_a_deploy() {
    let lag = rule("name: lag\nwhen: { lag_above: 100 }\nfor: 0s\n");
    let down = rule("name: down\nwhen: not_running\nseverity: critical\n");
    let r = reports(&[(0, 0, 500), (0, 0, 500)]);
    let mut i = input(&r, last_at(&r));
    i.phase = Phase::Deploying;
    assert_eq!(evaluate(&lag, true, &i), Verdict::Keep);
    assert_eq!(evaluate(&down, false, &i), Verdict::Keep);
    i.phase = Phase::Stopped;
    assert!(matches!(evaluate(&lag, true, &i), Verdict::Resolve { .. }));
    assert!(matches!(evaluate(&down, true, &i), Verdict::Resolve { .. }));
    i.phase = Phase::Failed;
    i.failure = Some("task 0 failed after spending its restart budget");
    match evaluate(&down, false, &i) {
        Verdict::Fire { message, .. } => assert!(message.contains("restart budget"), "{message}"),
        v => panic!("{v:?}"),
    }
    assert_eq!(evaluate(&down, true, &i), Verdict::Keep);
}

#[test]
fn an_alert_whose_rule_is_gone_resolves() {
    let r = reports(&[(0, 0, 0), (0, 0, 0)]);
    let firing = BTreeSet::from(["old".to_owned()]);
    let v = verdicts(&[], &firing, &input(&r, last_at(&r)));
    assert!(matches!(&v[..], [(n, Verdict::Resolve { .. })] if n == "old"));
}

#[test]
fn the_lookback_covers_every_hold_and_window() {
    let rules = vec![
        rule("name: a\nwhen: no_output\nfor: 5m\n"),
        rule("name: b\nwhen: { restarts: { at_least: 1, within: 10m } }\nfor: 1m\n"),
    ];
    assert_eq!(lookback(&rules), Duration::minutes(11) + STALE + STALE);
}
