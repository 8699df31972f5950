//! `java.util.Random`, bit for bit: Flink ML's benchmark generators draw their data from it,
//! so Weir's generators give the same values for the same seed.

/// Java's 48-bit linear congruential generator.
#[derive(Clone, Debug)]
pub struct JavaRandom {
    seed: u64,
}

const MULTIPLIER: u64 = 0x5DEE_CE66D;
const MASK: u64 = (1 << 48) - 1;

impl JavaRandom {
    /// `new Random(seed)`.
    ///
    /// ```
    /// use weir_flink_ml::benchmark::JavaRandom;
    /// let mut r = JavaRandom::new(62);
    /// assert_eq!(r.next_double(), 0.7286386762004889);
    /// assert_eq!(JavaRandom::new(62).next_int(100), 24);
    /// ```
    pub fn new(seed: i64) -> JavaRandom {
        JavaRandom {
            seed: (seed as u64 ^ MULTIPLIER) & MASK,
        }
    }

    fn next(&mut self, bits: u32) -> i32 {
        self.seed = (self.seed.wrapping_mul(MULTIPLIER).wrapping_add(0xB)) & MASK;
        (self.seed >> (48 - bits)) as i64 as i32
    }

    /// `nextDouble()`: uniform in [0, 1).
    pub fn next_double(&mut self) -> f64 {
        let high = (self.next(26) as i64) << 27;
        let low = self.next(27) as i64;
        (high + low) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `nextInt(bound)`: uniform in [0, bound); `bound` must be positive.
    pub fn next_int(&mut self, bound: i32) -> i32 {
        assert!(bound > 0, "bound must be positive");
        let mut r = self.next(31);
        let m = bound - 1;
        if bound & m == 0 {
            return ((bound as i64 * r as i64) >> 31) as i32;
        }
        let mut u = r;
        loop {
            r = u % bound;
            if u.wrapping_sub(r).wrapping_add(m) >= 0 {
                return r;
            }
            u = self.next(31);
        }
    }
}

/// Flink's per-subtask seed: `Tuple2.of(seed, task).hashCode()` = `31 * Long.hashCode(seed) + task`.
pub fn subtask_seed(seed: i64, task: i32) -> i64 {
    let long_hash = (seed ^ ((seed as u64) >> 32) as i64) as i32;
    long_hash.wrapping_mul(31).wrapping_add(task) as i64
}

/// Java's `String.hashCode`, the seed of a generator without one (its class name's hash).
pub fn java_string_hash(s: &str) -> i64 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_values_are_javas() {
        let mut r = JavaRandom::new(62);
        let doubles: Vec<f64> = (0..6).map(|_| r.next_double()).collect();
        assert_eq!(
            doubles,
            [
                0.7286386762004889,
                0.6486907219112564,
                0.4651503893115484,
                0.8897180140820594,
                0.2230214914808364,
                0.8285868414005173
            ]
        );
        let mut r = JavaRandom::new(62);
        let ints: Vec<i32> = (0..10).map(|_| r.next_int(100)).collect();
        assert_eq!(ints, [24, 99, 21, 98, 60, 19, 94, 64, 93, 74]);
        let mut r = JavaRandom::new(62);
        let ints: Vec<i32> = (0..10).map(|_| r.next_int(10)).collect();
        assert_eq!(ints, [4, 9, 1, 8, 0, 9, 4, 4, 3, 4]);
    }

    #[test]
    fn seeds_are_flinks() {
        assert_eq!(subtask_seed(2, 0), 62);
        assert_eq!(subtask_seed(2, 1), 63);
        assert_eq!(
            java_string_hash(
                "org.apache.flink.ml.benchmark.datagenerator.common.DenseVectorGenerator"
            ),
            -128322989
        );
    }
}
