//! Unit tests of the fences the lease keeper owns.

use super::*;

fn member(owner: Uuid) -> Member {
    Member {
        player: owner,
        owner,
    }
}

/// Goal: self-fencing sees exactly the sessions whose held lease no take or renewal
/// extended past the horizon; a session without a lease is never fenced, a later renewal
/// lifts the fence, an earlier one never shortens it, and an ended session's renewal gives
/// it no fence back.
#[test]
fn expiring_leases_are_those_not_extended_past_the_horizon() {
    let mut fences = Fences::default();
    let [a, b, c] = [1_u128, 2, 3].map(Uuid::from_u128);
    let now = Instant::now();
    let soon = now + Duration::from_secs(1);
    let later = now + Duration::from_secs(5);
    let horizon = now + Duration::from_secs(2);
    fences.taken(a, soon);
    fences.taken(b, later);
    // c holds no lease: it is not among the holders.
    let held = || vec![member(a), member(b)];
    let fenced: Vec<Uuid> = fences
        .expiring(held(), horizon)
        .iter()
        .map(|m| m.owner)
        .collect();
    assert_eq!(fenced, vec![a], "b is renewed past the horizon");
    fences.extend([a], later);
    assert_eq!(fences.expiring(held(), horizon), vec![]);
    fences.extend([a], soon);
    assert_eq!(
        fences.expiring(held(), horizon),
        vec![],
        "an earlier time never shortens"
    );
    assert_eq!(
        fences.expiring(vec![member(c)], horizon),
        vec![member(c)],
        "a holder that never took its lease here is unproven"
    );
    fences.forget(a);
    fences.extend([a], later);
    assert_eq!(
        fences.expiring(vec![member(a)], horizon).len(),
        1,
        "an ended session gets no fence back"
    );
}
