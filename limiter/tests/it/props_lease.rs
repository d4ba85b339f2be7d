//! Property tests of concurrency leases against a list-based model.

use proptest::prelude::*;
use raftlimit_limiter::LeaseSet;

#[derive(Clone, Debug)]
enum Op {
    Acquire { ttl: u64 },
    Release { pick: usize },
    Wait { ns: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u64..500).prop_map(|ttl| Op::Acquire { ttl }),
        2 => any::<usize>().prop_map(|pick| Op::Release { pick }),
        2 => (0u64..300).prop_map(|ns| Op::Wait { ns }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn leases_match_model(limit in 0u64..6, ops in prop::collection::vec(op(), 1..100)) {
        let mut set = LeaseSet::new();
        // (id, expires_at) of every lease ever granted.
        let mut model: Vec<(String, u64)> = Vec::new();
        let mut now = 1_000u64;
        let mut next_index = 0u64;
        for op in ops {
            let live = |m: &Vec<(String, u64)>, now: u64| {
                m.iter().filter(|(_, e)| *e > now).count() as u64
            };
            match op {
                Op::Acquire { ttl } => {
                    // Ids derive from a log index, as the server does.
                    next_index += 1;
                    let id = format!("{next_index:020}");
                    let held = live(&model, now);
                    let got = set.acquire(limit, ttl, now, id.clone());
                    if held < limit {
                        prop_assert_eq!(got, Ok((id.clone(), held + 1)));
                        model.push((id, now + ttl));
                    } else {
                        prop_assert_eq!(got, Err(held));
                    }
                }
                Op::Release { pick } => {
                    if model.is_empty() {
                        prop_assert!(!set.release("none", now));
                    } else {
                        let i = pick % model.len();
                        let was_live = model[i].1 > now;
                        prop_assert_eq!(set.release(&model[i].0, now), was_live);
                        model.remove(i);
                    }
                }
                Op::Wait { ns } => now += ns,
            }
            prop_assert_eq!(set.held(now), live(&model, now));
            prop_assert!(set.held(now) <= limit);
            // The key's TTL outlives every live lease.
            for (_, e) in model.iter().filter(|(_, e)| *e > now) {
                prop_assert!(set.expires_at_ns() >= *e);
            }
        }
    }
}
