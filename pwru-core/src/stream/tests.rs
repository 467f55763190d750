//! The stream core against a real kernel ring buffer, with records committed by a real BPF
//! program (run with `BPF_PROG_TEST_RUN`) while the stream sleeps. With the default flags the
//! kernel notifies the reader; with `BPF_RB_NO_WAKEUP` it does not, which is exactly what a
//! lost notification looks like to the reader: the record must still come out, by the
//! backstop, without any other event or signal.

use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use futures::Stream;

use super::readiness::{Readiness, BACKSTOP};
use super::{Counters, RecordStream, WithLost};

static NEVER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
use crate::error::Error;
use crate::sys;

const BPF_FUNC_RINGBUF_OUTPUT: i32 = 130;
const BPF_RB_NO_WAKEUP: i32 = 1;
const MARK: i32 = 0x5157;

/// What these tests' streams yield: a record's bytes, or a loss notice.
#[derive(Debug, PartialEq, Eq)]
enum Record {
    Item(Vec<u8>),
    Lost { count: u64, total: u64 },
}

impl WithLost for Record {
    fn lost(count: u64, total: u64) -> Self {
        Record::Lost { count, total }
    }
}

/// A waker that reports each wake-up on a channel.
struct Notify(Mutex<mpsc::Sender<()>>);

impl Wake for Notify {
    fn wake(self: Arc<Self>) {
        if let Ok(tx) = self.0.lock() {
            let _ = tx.send(());
        }
    }
}

/// A one-page ring buffer map and a socket filter that writes the 8-byte word `MARK` into it
/// with `bpf_ringbuf_output(map, &word, 8, flags)`.
fn ring_and_writer(flags: i32) -> std::io::Result<(OwnedFd, OwnedFd)> {
    let map = sys::map_create(&sys::MapCreate {
        map_type: sys::MAP_TYPE_RINGBUF,
        key_size: 0,
        value_size: 0,
        max_entries: 4096,
        name: "pwru_test_ring",
    })?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&map);
    let insns = [
        sys::insn(0x7a, 10, 0, -8, MARK), // *(u64 *)(r10 - 8) = MARK
        sys::insn(0x18, 1, 1, 0, fd),     // r1 = map (ld_imm64, map fd)
        sys::insn(0, 0, 0, 0, 0),         //   (second half)
        sys::insn(0xbf, 2, 10, 0, 0),     // r2 = r10
        sys::insn(0x07, 2, 0, 0, -8),     // r2 += -8
        sys::insn(0xb7, 3, 0, 0, 8),      // r3 = 8
        sys::insn(0xb7, 4, 0, 0, flags),  // r4 = flags
        sys::insn(0x85, 0, 0, 0, BPF_FUNC_RINGBUF_OUTPUT), // call bpf_ringbuf_output
        sys::insn(0xb7, 0, 0, 0, 0),      // r0 = 0
        sys::insn(0x95, 0, 0, 0, 0),      // exit
    ];
    let prog = sys::prog_load(&sys::ProgLoad {
        prog_type: sys::PROG_TYPE_SOCKET_FILTER,
        expected_attach_type: 0,
        insns: &insns,
        name: "pwru_test_writer",
        attach_btf_id: 0,
        attach_prog_fd: None,
    })
    .map_err(|r| std::io::Error::new(r.error.kind(), r.to_string()))?;
    Ok((map, prog))
}

/// Runs the writer once (one record committed, on this thread).
fn run(prog: &OwnedFd) -> std::io::Result<()> {
    run_n(prog, 1)
}

/// Runs the writer `n` times in one syscall (`n` records committed back to back).
fn run_n(prog: &OwnedFd, n: u32) -> std::io::Result<()> {
    let data = [0u8; 64];
    let run = sys::TestRun {
        data: &data,
        ctx: None,
        repeat: n,
    };
    sys::prog_test_run(std::os::fd::AsFd::as_fd(prog), &run).map(drop)
}

/// Arms the stream on an empty ring, commits one record with `flags` while it sleeps, and
/// returns how long the record took to come out (or `None` after 3 s) and the backstop count.
fn lone_record(flags: i32) -> Option<(Option<Duration>, u64)> {
    if !sys::process::is_root() {
        println!("SKIP stream::tests: needs root (CAP_BPF) to make a ring buffer");
        return None;
    }
    let (map, prog) = ring_and_writer(flags).expect("ring buffer map and writer program");
    let data = aya::maps::MapData::from_fd(map).expect("map data");
    let mut ring =
        aya::maps::RingBuf::try_from(aya::maps::Map::RingBuf(data)).expect("ring buffer");
    let readiness = Readiness::new(std::os::fd::AsFd::as_fd(&ring)).expect("readiness thread");
    let counters = Counters::default();
    let mut stream = RecordStream {
        source: &mut ring,
        readiness: &readiness,
        decode: |b: &[u8]| -> Result<Record, Error> { Ok(Record::Item(b.to_vec())) },
        read_lost: || -> Result<u64, Error> { Ok(0) },
        counters: &counters,
        stop: &NEVER,
        since_lost_check: 0,
    };
    // Poll by hand: the stream is polled again only after its waker fired, so a record can
    // come out only through a wake-up (a fresh poll would find it without one).
    let (tx, rx) = mpsc::channel();
    let waker = Waker::from(Arc::new(Notify(Mutex::new(tx))));
    let mut cx = Context::from_waker(&waker);
    // The ring is empty: the stream arms its wake-up and sleeps.
    assert!(Pin::new(&mut stream).poll_next(&mut cx).is_pending());
    run(&prog).expect("BPF_PROG_TEST_RUN");
    let sent = Instant::now();
    let until = sent + Duration::from_secs(3);
    let took = loop {
        if rx
            .recv_timeout(until.saturating_duration_since(Instant::now()))
            .is_err()
        {
            break None;
        }
        match Pin::new(&mut stream).poll_next(&mut cx) {
            Poll::Pending => continue,
            Poll::Ready(Some(Ok(Record::Item(bytes)))) => {
                assert_eq!(bytes, i64::from(MARK).to_ne_bytes(), "the record written");
                break Some(sent.elapsed());
            }
            Poll::Ready(other) => panic!("unexpected stream item {other:?}"),
        }
    };
    Some((took, readiness.backstop_wakeups()))
}

#[test]
fn a_notified_record_wakes_the_sleeping_stream() {
    let Some((took, backstop)) = lone_record(0) else {
        return;
    };
    println!("notified record delivered after {took:?}; backstop wake-ups {backstop}");
    assert!(took.is_some(), "the record never came out of the stream");
}

#[test]
fn a_record_without_notification_still_comes_out() {
    let Some((took, backstop)) = lone_record(BPF_RB_NO_WAKEUP) else {
        return;
    };
    println!(
        "record committed with BPF_RB_NO_WAKEUP delivered after {took:?} (backstop {BACKSTOP:?}); \
         backstop wake-ups {backstop}"
    );
    assert!(
        took.is_some(),
        "a record committed without a kernel notification stayed in the ring buffer"
    );
    assert_eq!(backstop, 1, "the backstop delivered it, and counted it");
}

/// Bursts of records followed by a lone one, many times, while the stream drains and goes to
/// sleep on another thread: every record comes out, and with the kernel's notifications (flags
/// 0) the backstop never has to step in (a backstop wake-up here would be a notification lost
/// by the ring buffer protocol: consumer position published, fence, emptiness check, arm).
#[test]
fn bursts_then_a_lone_record_all_come_out_by_notification() {
    const CYCLES: u32 = 10_000;
    if !sys::process::is_root() {
        println!("SKIP stream::tests: needs root (CAP_BPF) to make a ring buffer");
        return;
    }
    let (map, prog) = ring_and_writer(0).expect("ring buffer map and writer program");
    let data = aya::maps::MapData::from_fd(map).expect("map data");
    let mut ring =
        aya::maps::RingBuf::try_from(aya::maps::Map::RingBuf(data)).expect("ring buffer");
    let readiness = Readiness::new(std::os::fd::AsFd::as_fd(&ring)).expect("readiness thread");
    let counters = Counters::default();
    let mut stream = RecordStream {
        source: &mut ring,
        readiness: &readiness,
        decode: |b: &[u8]| -> Result<Record, Error> { Ok(Record::Item(b.to_vec())) },
        read_lost: || -> Result<u64, Error> { Ok(0) },
        counters: &counters,
        stop: &NEVER,
        since_lost_check: 0,
    };
    let (tx, rx) = mpsc::channel();
    let waker = Waker::from(Arc::new(Notify(Mutex::new(tx))));
    let mut cx = Context::from_waker(&waker);
    // The writer waits for the reader to have everything before the next cycle, so the
    // one-page ring never fills (a full ring would lose records, not wake-ups).
    let (done_tx, done_rx) = mpsc::channel::<u32>();
    let expected: u32 = (0..CYCLES).map(|c| 2 + c % 40).sum();
    let mut got = 0u32;
    let mut stuck = false;
    let prog = &prog;
    std::thread::scope(|s| {
        let writer = s.spawn(move || -> std::io::Result<u32> {
            let mut sent = 0;
            for cycle in 0..CYCLES {
                let burst = 1 + cycle % 40;
                run_n(prog, burst)?;
                run(prog)?;
                sent += burst + 1;
                // Wait (bounded) until the reader has caught up.
                while done_rx
                    .recv_timeout(Duration::from_secs(5))
                    .is_ok_and(|n| n < sent)
                {}
            }
            Ok(sent)
        });
        while got < expected {
            match Pin::new(&mut stream).poll_next(&mut cx) {
                Poll::Ready(Some(Ok(_))) => {
                    got += 1;
                    let _ = done_tx.send(got);
                    continue;
                }
                Poll::Ready(other) => panic!("unexpected stream item {other:?}"),
                Poll::Pending => {}
            }
            // Asleep: only a wake-up brings the next record.
            if rx.recv_timeout(Duration::from_secs(3)).is_err() {
                stuck = true;
                break;
            }
        }
        drop(done_tx);
        let sent = writer.join().expect("writer").expect("BPF_PROG_TEST_RUN");
        println!(
            "{CYCLES} cycles: {sent} records written, {got} read; backstop wake-ups {}",
            readiness.backstop_wakeups()
        );
        assert!(!stuck, "the reader slept with records waiting");
        assert_eq!(got, sent, "every record came out");
    });
    assert_eq!(
        readiness.backstop_wakeups(),
        0,
        "a kernel notification went missing"
    );
}
