//! At most N jobs at once: the nodes of a lab come up (and down) in parallel, bounded by
//! `--jobs` (twice the number of CPUs by default), each job a pipeline of the tools.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// The default bound: twice the number of CPUs. A container's bring-up is mostly waiting (for
/// the runtime's processes, for the kernel), so more jobs than CPUs pay; on the 2-core machine
/// of BENCHMARKS.md, a LAN of 50 came up 1.37 times faster with 2 jobs than with 1, 1.55 times
/// with 4, and no faster with 8.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        * 2
}

/// Runs `f` on every item, at most `jobs` at a time; the results in the items' order.
pub fn parallel<T: Sync, R: Send>(jobs: usize, items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let workers = jobs.clamp(1, items.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                if let Ok(mut res) = results.lock() {
                    res[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_in_order() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let items: Vec<u32> = (0..20).collect();
        let out = parallel(3, &items, |i| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(5));
            running.fetch_sub(1, Ordering::SeqCst);
            i * 2
        });
        assert_eq!(out, items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert!(peak.load(Ordering::SeqCst) <= 3);
        assert!(parallel(4, &Vec::<u32>::new(), |i| *i).is_empty());
    }
}
