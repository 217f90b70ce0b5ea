//! Hashes with fixed outputs: what a key, a cache entry or a query binding
//! is made of must be the same on every build, platform and run.

/// FNV-1a: a stable, dependency-free hash, so a resent event always lands
/// on the same shard whatever the build or platform.
pub fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A hex SHA-256 digest (cache keys, query bindings).
pub fn digest(text: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    d.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stable() {
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c, "FNV-1a reference value");
        assert_eq!(digest("abc"), "ba7816bf8f01cfea414140de5dae2223");
    }
}
