use super::*;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

#[test]
fn a_kind_freezes_a_tenth_of_its_retention_before_its_hour_expires() {
    let hour = at("2026-11-01T10:00:00Z");
    assert!(!is_frozen(hour, 30, None, at("2026-11-28T09:59:59Z")));
    assert!(is_frozen(hour, 30, None, at("2026-11-28T10:00:00Z")), "27 days: 30 less a tenth");
    assert!(!is_frozen(hour, 90, None, at("2026-11-28T10:00:00Z")));
    let raised = KindState { kept_until: Some(at("2026-12-01T10:00:00Z").timestamp()), ..Default::default() };
    assert!(is_frozen(hour, 90, Some(&raised), at("2026-11-28T10:00:00Z")), "raw written under a shorter retention");
    let sticky = KindState { frozen: true, ..Default::default() };
    assert!(is_frozen(hour, 90, Some(&sticky), at("2026-11-02T10:00:00Z")), "frozen stays frozen");
}
