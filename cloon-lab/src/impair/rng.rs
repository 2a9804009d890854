//! The relay's random numbers: SplitMix64 (Steele, Lea and Flood, 2014), a 64-bit generator of
//! good statistical quality in a few lines.
//!
//! Written here rather than taken from a crate because a seed must give the same impairment
//! forever: a published seed in a lab's notes has to replay the same losses after any upgrade,
//! and general-purpose crates reserve the right to change their generators' streams.

/// A seeded generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator whose stream is fixed by `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number uniformly drawn from [0, 1), with 53 random bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Whether an event of probability `percent` (0 to 100) happens: never at 0, always at 100.
    pub fn chance(&mut self, percent: f64) -> bool {
        self.unit() * 100.0 < percent
    }

    /// A number uniformly drawn from `0..n` (`n` > 0), nearly unbiased for the small ranges used
    /// here (frame offsets, jitter in nanoseconds).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// A seed from the kernel's random source, for a run with none given (it is recorded, so that the
/// run can be repeated).
pub fn fresh_seed() -> u64 {
    use std::io::Read;
    let mut b = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u64::from_ne_bytes(b);
    }
    // No /dev/urandom: the clock and the pid are enough for an unrepeated seed.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    now ^ (u64::from(std::process::id()) << 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_fixed() {
        // SplitMix64's reference output for seed 0 (from the algorithm's published code).
        let mut r = Rng::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn chances_are_about_right() {
        let mut r = Rng::new(7);
        assert!((0..1000).all(|_| r.chance(100.0)));
        assert!((0..1000).all(|_| !r.chance(0.0)));
        let hits = (0..100_000).filter(|_| r.chance(30.0)).count();
        assert!((29_000..31_000).contains(&hits), "{hits}");
        assert!((0..1000).all(|_| r.below(10) < 10));
        assert_ne!(fresh_seed(), fresh_seed());
    }
}
