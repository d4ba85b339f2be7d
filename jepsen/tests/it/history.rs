//! History records: JSON-lines round trips and the pairing rules.

use raftlimit_jepsen::history::{
    Algo, History, LeaseArgs, LimitArgs, Op, OpKind, Outcome, Value, Verdict, F,
};
use raftlimit_jepsen::Error;

use crate::support::s;

fn sample() -> History {
    let w = Op::invoke(0, F::Write, "r", s("a"), 10).with_node("n1");
    let c = Op::invoke(
        1,
        F::Check,
        "rl",
        Value::Limit(LimitArgs {
            limit: 5,
            period_ms: 1000,
            algo: Algo::Gcra,
            burst: None,
        }),
        11,
    );
    let a = Op::invoke(
        2,
        F::Acquire,
        "sem",
        Value::Lease(LeaseArgs {
            limit: 2,
            ttl_ms: 500,
        }),
        12,
    );
    History::from_ops(vec![
        w.clone(),
        c.clone(),
        a.clone(),
        w.complete(OpKind::Ok, s("a"), 20),
        c.complete(
            OpKind::Ok,
            Value::Verdict(Verdict {
                allowed: true,
                limit: Some(5),
                remaining: Some(4),
                retry_after_ms: Some(-1),
                reset_after_ms: Some(200),
            }),
            21,
        ),
        a.complete(OpKind::Info, Value::Nil, 30)
            .with_error("timeout"),
        Op::invoke(3, F::ReadList, "l", Value::Nil, 31),
        Op::invoke(3, F::ReadList, "l", Value::Nil, 31).complete(
            OpKind::Ok,
            Value::List(vec![1, 2]),
            40,
        ),
    ])
}

fn temp_path(name: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!(
        "raftlimit-jepsen-{}-{nanos}-{name}",
        std::process::id()
    ))
}

#[test]
fn jsonl_round_trip_through_a_file() {
    let history = sample();
    let path = temp_path("history.jsonl");
    history.save(&path).unwrap();
    let loaded = History::load(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(loaded, history);
}

#[test]
fn one_record_per_line_in_a_readable_shape() {
    let mut out = Vec::new();
    sample().write_jsonl(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8);
    assert_eq!(
        lines[0],
        r#"{"process":0,"kind":"invoke","f":"write","key":"r","value":{"str":"a"},"time_ns":10,"node":"n1"}"#
    );
    assert!(lines[4]
        .contains(r#""value":{"verdict":{"allowed":true,"limit":5,"remaining":4,"retry_after_ms":-1,"reset_after_ms":200}}"#));
    assert!(lines[5].contains(r#""kind":"info""#) && lines[5].contains(r#""error":"timeout""#));
}

#[test]
fn blank_lines_are_skipped_and_bad_lines_are_reported_with_their_number() {
    let good = r#"{"process":0,"kind":"invoke","f":"read","key":"k","value":"nil","time_ns":1}"#;
    let history = History::read_jsonl(format!("{good}\n\n{good}\n").as_bytes()).unwrap();
    assert_eq!(history.len(), 2);

    let torn = format!("{good}\n{{\"process\":0,\"kind\":\"ok\"");
    match History::read_jsonl(torn.as_bytes()) {
        Err(Error::Json { line, .. }) => assert_eq!(line, 2),
        other => panic!("expected a JSON error, got {other:?}"),
    }
}

#[test]
fn value_may_be_omitted() {
    let line = r#"{"process":0,"kind":"invoke","f":"read","key":"k","time_ns":1}"#;
    let history = History::read_jsonl(line.as_bytes()).unwrap();
    assert_eq!(history.ops()[0].value, Value::Nil);
}

#[test]
fn pairs_match_each_invocation_with_its_process_completion() {
    let pairs = sample().pairs().unwrap();
    assert_eq!(pairs.len(), 4);
    let w = &pairs[0];
    assert_eq!((w.index, w.completion_index), (0, Some(3)));
    assert_eq!(
        (w.outcome, w.invoke_ns, w.complete_ns),
        (Outcome::Ok, 10, Some(20))
    );
    assert_eq!(w.args, s("a"));
    assert_eq!(w.node.as_deref(), Some("n1"));
    let check = &pairs[1];
    assert_eq!(check.completion_index, Some(4));
    assert!(matches!(
        check.result,
        Value::Verdict(Verdict { allowed: true, .. })
    ));
    let acquire = &pairs[2];
    assert_eq!(acquire.outcome, Outcome::Info);
    assert_eq!(acquire.error.as_deref(), Some("timeout"));
    assert_eq!(
        acquire.effect_deadline_ns(),
        u64::MAX,
        "an Info op may take effect any time later"
    );
    assert_eq!(pairs[3].result, Value::List(vec![1, 2]));
}

#[test]
fn an_invocation_without_completion_is_indeterminate() {
    let history = History::from_ops(vec![Op::invoke(7, F::Write, "k", s("x"), 5)]);
    let pairs = history.pairs().unwrap();
    assert_eq!(pairs[0].outcome, Outcome::Info);
    assert_eq!(pairs[0].complete_ns, None);
    assert_eq!(pairs[0].completion_index, None);
    assert_eq!(pairs[0].effect_deadline_ns(), u64::MAX);
}

fn malformed(ops: Vec<Op>) -> (usize, String) {
    match History::from_ops(ops).pairs() {
        Err(Error::Malformed { index, reason }) => (index, reason),
        other => panic!("expected a malformed history, got {other:?}"),
    }
}

#[test]
fn a_completion_needs_an_invocation() {
    let r = Op::invoke(0, F::Read, "k", Value::Nil, 1);
    let (index, reason) = malformed(vec![r.complete(OpKind::Ok, Value::Nil, 2)]);
    assert_eq!(index, 0);
    assert!(reason.contains("without an invocation"), "{reason}");
}

#[test]
fn a_process_has_one_operation_in_flight() {
    let r = Op::invoke(0, F::Read, "k", Value::Nil, 1);
    let (index, reason) = malformed(vec![r.clone(), Op::invoke(0, F::Read, "k", Value::Nil, 2)]);
    assert_eq!(index, 1);
    assert!(reason.contains("still in flight"), "{reason}");
}

#[test]
fn a_completion_must_match_its_invocation() {
    let r = Op::invoke(0, F::Read, "k", Value::Nil, 1);
    let mut wrong = r.complete(OpKind::Ok, Value::Nil, 2);
    wrong.key = "other".to_owned();
    let (index, _) = malformed(vec![r.clone(), wrong]);
    assert_eq!(index, 1);
    let mut wrong_f = r.complete(OpKind::Ok, Value::Nil, 2);
    wrong_f.f = F::Write;
    assert_eq!(malformed(vec![r, wrong_f]).0, 1);
}

#[test]
fn a_process_is_finished_after_an_indeterminate_result() {
    let r = Op::invoke(0, F::Read, "k", Value::Nil, 1);
    let (index, reason) = malformed(vec![
        r.clone(),
        r.complete(OpKind::Info, Value::Nil, 2),
        Op::invoke(0, F::Read, "k", Value::Nil, 3),
    ]);
    assert_eq!(index, 2);
    assert!(reason.contains("new process"), "{reason}");

    // Carrying on under the successor id is fine.
    let next = History::next_process(0, 4);
    assert_eq!(next, 4);
    let ok = History::from_ops(vec![
        r.clone(),
        r.complete(OpKind::Info, Value::Nil, 2),
        Op::invoke(next, F::Read, "k", Value::Nil, 3),
    ]);
    assert_eq!(ok.pairs().unwrap().len(), 2);
}

#[test]
fn a_fail_or_ok_does_not_finish_the_process() {
    let r = Op::invoke(0, F::Read, "k", Value::Nil, 1);
    let history = History::from_ops(vec![
        r.clone(),
        r.complete(OpKind::Fail, Value::Nil, 2),
        Op::invoke(0, F::Read, "k", Value::Nil, 3),
        r.complete(OpKind::Ok, Value::Nil, 4),
    ]);
    let pairs = history.pairs().unwrap();
    assert_eq!(pairs[0].outcome, Outcome::Fail);
    assert_eq!(pairs[1].outcome, Outcome::Ok);
}

#[test]
fn a_process_clock_never_goes_backwards() {
    let r = Op::invoke(0, F::Read, "k", Value::Nil, 10);
    let (index, reason) = malformed(vec![r.clone(), r.complete(OpKind::Ok, Value::Nil, 9)]);
    assert_eq!(index, 1);
    assert!(reason.contains("backwards"), "{reason}");
}

#[test]
fn loading_a_missing_file_names_it() {
    let path = temp_path("missing.jsonl");
    match History::load(&path) {
        Err(e @ Error::Io { .. }) => assert!(e.to_string().contains("missing.jsonl")),
        other => panic!("expected an I/O error, got {other:?}"),
    }
}
