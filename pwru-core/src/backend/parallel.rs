//! Attaching and detaching on a given number of threads, in rounds that keep the targets'
//! order. Each kprobe or trampoline the kernel adds or removes waits (text patching, RCU
//! grace periods, the verifier for per-function fentry programs); threads overlap those waits
//! only where the kernel does not serialise them. It does for most of kprobe and trampoline
//! registration, so attaching defaults to two threads (`object::DEFAULT_ATTACH_THREADS`);
//! detaching sleeps in grace periods that threads overlap, so it uses many
//! (`link::DETACH_THREADS`).

use std::sync::{Mutex, MutexGuard};

/// Items handled per round: a round's results reach the caller (and progress is reported)
/// before the next round starts, so attach progress keeps moving.
const ROUND_PER_THREAD: usize = 8;

/// `work` applied to every item, on up to `threads` threads, results in the order of
/// `items`. After each round `progress` gets the items done so far and the last item of the
/// round, on the calling thread; `accept` gets each result in order, also on the calling
/// thread, as soon as its round is over, and returns false to stop after that round.
pub(crate) fn for_each_in_rounds<T, R>(
    threads: usize,
    items: &[T],
    work: impl Fn(&T) -> R + Sync,
    mut accept: impl FnMut(&T, R) -> bool,
    progress: &mut dyn FnMut(usize, &T),
) where
    T: Sync,
    R: Send,
{
    let threads = threads.max(1);
    let mut done = 0;
    for round in items.chunks(threads * ROUND_PER_THREAD) {
        let results = map_split(round, threads, &work);
        let mut go_on = true;
        for (item, r) in round.iter().zip(results) {
            go_on &= accept(item, r);
        }
        done += round.len();
        if let Some(last) = round.last() {
            progress(done, last);
        }
        if !go_on {
            return;
        }
    }
}

/// `work` on every item of `items`, split into up to `threads` contiguous parts, each on its
/// own thread (the last on the calling one, and any part whose thread the system refused);
/// results in order.
fn map_split<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    work: &(impl Fn(&T) -> R + Sync),
) -> Vec<R> {
    let part = items.len().div_ceil(threads.max(1)).max(1);
    let mut parts = items.chunks(part);
    let Some(last) = parts.next_back() else {
        return Vec::new();
    };
    std::thread::scope(|s| {
        let spawned: Vec<_> = parts
            .map(|p| {
                let handle = std::thread::Builder::new()
                    .spawn_scoped(s, move || p.iter().map(work).collect::<Vec<R>>());
                (p, handle.ok())
            })
            .collect();
        let tail: Vec<R> = last.iter().map(work).collect();
        let mut out = Vec::with_capacity(items.len());
        for (p, handle) in spawned {
            match handle.map(|h| h.join()) {
                Some(Ok(v)) => out.extend(v),
                // `work` panicked: the same panic, on the calling thread.
                Some(Err(payload)) => std::panic::resume_unwind(payload),
                // No thread for this part: done here.
                None => out.extend(p.iter().map(work)),
            }
        }
        out.extend(tail);
        out
    })
}

/// Drops (or otherwise consumes) every item on up to `threads` threads, the calling one
/// among them, each taking the next item as it finishes one: closing an fd of a kprobe or
/// trampoline can wait for grace periods, and closes on different threads wait together.
/// `consume` turns each into what the caller keeps, in order. Threads the system refuses
/// are done without: the others, at least the calling thread, take every item.
pub(crate) fn consume_all<T: Send, R: Send>(
    threads: usize,
    items: Vec<T>,
    consume: impl Fn(T) -> R + Sync,
) -> Vec<R> {
    if items.len() < 2 || threads < 2 {
        return items.into_iter().map(consume).collect();
    }
    let count = items.len();
    let helpers = threads.min(count) - 1;
    let queue = Mutex::new(items.into_iter().enumerate());
    let done = Mutex::new(Vec::with_capacity(count));
    let worker = || loop {
        // The lock is released before `consume` runs: items are taken one at a time.
        let next = lock(&queue).next();
        let Some((i, item)) = next else { break };
        let r = consume(item);
        lock(&done).push((i, r));
    };
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..helpers)
            .filter_map(|_| std::thread::Builder::new().spawn_scoped(s, worker).ok())
            .collect();
        worker();
        for h in handles {
            if let Err(payload) = h.join() {
                // `consume` panicked: the same panic, on the calling thread.
                std::panic::resume_unwind(payload);
            }
        }
    });
    let mut done = done
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// Locks `m`; a panic in another worker leaves the queue or the results consistent (the
/// panic itself is re-raised by the caller).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_keep_order_and_report_every_item() {
        let items: Vec<u32> = (0..103).collect();
        let mut seen = Vec::new();
        let mut reported = Vec::new();
        for_each_in_rounds(
            3,
            &items,
            |x| x * 2,
            |x, r| {
                seen.push((*x, r));
                true
            },
            &mut |done, last| reported.push((done, *last)),
        );
        assert_eq!(seen, items.iter().map(|x| (*x, x * 2)).collect::<Vec<_>>());
        assert_eq!(reported.last(), Some(&(103, 102)));
        assert!(reported.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn consume_all_keeps_order() {
        let out = consume_all(4, (0..57).map(|i| i.to_string()).collect(), |s| s.len());
        assert_eq!(out.len(), 57);
        assert_eq!(out[10], 2);
        assert!(consume_all(4, Vec::<u8>::new(), |x| x).is_empty());
        assert_eq!(consume_all(1, vec![1, 2, 3], |x| x + 1), [2, 3, 4]);
    }

    #[test]
    fn consume_all_takes_each_item_once_whatever_the_threads() {
        let ran = std::sync::atomic::AtomicUsize::new(0);
        for threads in [2, 5, 16, 64] {
            ran.store(0, std::sync::atomic::Ordering::SeqCst);
            let out = consume_all(threads, (0..1000u32).collect(), |x| {
                ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                x * 3
            });
            assert_eq!(out, (0..1000u32).map(|x| x * 3).collect::<Vec<_>>());
            assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 1000);
        }
        assert_eq!(consume_all(16, vec![7u8, 8, 9], |x| x), [7, 8, 9]);
    }
}
