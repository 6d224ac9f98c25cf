//! The one percentile definition every benchmark and latency summary uses: nearest rank.
//!
//! The q-quantile of n sorted values is the value at rank ⌈q·n⌉ (1-based, at least 1), so it is
//! always an observed value and p100 is the maximum. One definition keeps the figures of the
//! edge's `perf`, the cloud's benchmarks and the soak test comparable.

/// The nearest-rank `q`-quantile (`q` in 0..=1) of `sorted` (ascending); `None` when empty.
pub fn nearest_rank<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::nearest_rank;

    #[test]
    fn nearest_rank_table() {
        let ten: Vec<u32> = (1..=10).collect();
        for (q, want) in [
            (0.0, 1),
            (0.1, 1),
            (0.11, 2),
            (0.5, 5),
            (0.9, 9),
            (0.99, 10),
            (1.0, 10),
        ] {
            assert_eq!(nearest_rank(&ten, q), Some(want), "q = {q}");
        }
        assert_eq!(nearest_rank::<u32>(&[], 0.5), None);
        assert_eq!(nearest_rank(&[7.5], 0.99), Some(7.5));
    }
}
