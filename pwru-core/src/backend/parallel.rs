//! Attaching and detaching on a given number of threads, in rounds that keep the targets'
//! order. Each kprobe or trampoline the kernel adds or removes waits (text patching, RCU
//! grace periods, the verifier for per-function fentry programs); threads overlap those waits
//! only where the kernel does not serialise them. It does for kprobe and trampoline
//! registration, so attaching defaults to one thread (`Loader::attach_threads`); detaching
//! sleeps in grace periods that threads overlap, so it uses many (`link::DETACH_THREADS`).

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
/// own thread (the last on the calling one); results in order.
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
        let handles: Vec<_> = parts
            .map(|p| s.spawn(move || p.iter().map(work).collect::<Vec<R>>()))
            .collect();
        let tail: Vec<R> = last.iter().map(work).collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            match h.join() {
                Ok(v) => out.extend(v),
                // `work` panicked: the same panic, on the calling thread.
                Err(payload) => std::panic::resume_unwind(payload),
            }
        }
        out.extend(tail);
        out
    })
}

/// Drops (or otherwise consumes) every item, split over `threads` threads: closing an fd of
/// a kprobe or trampoline can wait for a grace period, and closes on different threads wait
/// together. `consume` turns each into what the caller keeps, in order.
pub(crate) fn consume_all<T: Send, R: Send>(
    threads: usize,
    items: Vec<T>, consume: impl Fn(T) -> R + Sync) -> Vec<R> {
    if items.len() < 2 || threads < 2 {
        return items.into_iter().map(consume).collect();
    }
    let threads = threads.min(items.len());
    let part = items.len().div_ceil(threads);
    let mut parts: Vec<Vec<T>> = Vec::with_capacity(threads);
    let mut rest = items.into_iter();
    loop {
        let p: Vec<T> = rest.by_ref().take(part).collect();
        if p.is_empty() {
            break;
        }
        parts.push(p);
    }
    let consume = &consume;
    std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|p| s.spawn(move || p.into_iter().map(consume).collect::<Vec<R>>()))
            .collect();
        let mut out = Vec::new();
        for h in handles {
            match h.join() {
                Ok(v) => out.extend(v),
                Err(payload) => std::panic::resume_unwind(payload),
            }
        }
        out
    })
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
}
