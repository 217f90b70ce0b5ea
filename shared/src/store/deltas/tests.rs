use super::*;

#[test]
fn live_hours_are_the_receipts_the_one_before_and_later() {
    let t = |s: &str| crate::time::parse_timestamp(s).unwrap();
    let received = t("2026-12-07T10:20:00Z");
    assert!(is_live(t("2026-12-07T10:00:00Z"), received));
    assert!(is_live(t("2026-12-07T09:00:00Z"), received));
    assert!(is_live(t("2026-12-08T09:00:00Z"), received));
    assert!(!is_live(t("2026-12-07T08:00:00Z"), received));
    assert!(trusted_at(t("2026-12-07T09:00:00Z"), t("2026-12-07T10:58:59Z")));
    assert!(!trusted_at(t("2026-12-07T09:00:00Z"), t("2026-12-07T10:59:00Z")));
}
