use super::*;

/// While a batch is on its way to the log, the actor id it introduces is held for its
/// participant: another may not take it, yet the registry does not call it bound; a failed
/// batch lets it go, a durable one binds it.
#[test]
fn a_held_actor_id_is_nobody_elses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), None).expect("store");
    let reg = Registry::load(store, Clock::manual(0)).expect("registry");
    let x = b"actor-x".to_vec();
    assert!(reg.reserve_actor("P-A", &x));
    assert!(!reg.reserve_actor("P-B", &x), "held for P-A");
    assert_eq!(reg.actor_claimed_by(&x).as_deref(), Some("P-A"));
    assert_eq!(reg.actor_owner(&x), None, "not bound before it is durable");
    reg.release_actors(&[(x.clone(), "P-A".into())]);
    assert_eq!(reg.actor_claimed_by(&x), None, "a failed batch lets it go");
    assert!(reg.reserve_actor("P-B", &x));
    reg.confirm_actors(&[(x.clone(), "P-B".into())]);
    assert_eq!(reg.actor_owner(&x).as_deref(), Some("P-B"));
    assert!(!reg.reserve_actor("P-A", &x), "bound to P-B for good");
}
