//! A hint to the CPU to load data it will read soon, for the hot loops that stream through
//! cached training data (the hardware prefetcher alone leaves them waiting on memory).

/// Asks the CPU to load `values` into its caches (a hint; nothing elsewhere).
#[inline(always)]
pub(crate) fn prefetch(values: &[f64]) {
    #[cfg(target_arch = "x86_64")]
    for line in values.chunks(8) {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch reads nothing and faults on no address; SSE is part of x86_64.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = values;
}
