//! `Tracer::attach_in_background` on the host kernel (tracepoint backend, real packets): the
//! session comes back with part of the targets attached and the rest attaching on a thread;
//! every target ends up attached, refused or (when stopped first) cancelled, exactly once;
//! events of the first targets flow; a stop ends the attaching thread and detaches all.

mod tracer_common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pwru_core::{Backend, Tracer};
use pwru_testkit::netlab::VethPair;
use tracer_common::*;

fn tracer(filter: &str) -> Tracer {
    Tracer::builder()
        .backend(Backend::Tracepoint)
        .pcap_filter(filter)
        .build()
        .expect("build")
}

#[test]
fn every_target_is_attached_once_and_the_session_completes_its_lists() {
    let name = "every_target_is_attached_once_and_the_session_completes_its_lists";
    if skip_unless_root(name) {
        return;
    }
    let tracer = tracer("udp");
    let targets: HashSet<String> = tracer.targets().iter().map(|t| t.name.clone()).collect();
    assert!(
        targets.len() > 1,
        "too few tracepoints to attach in two parts"
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let progress = Arc::clone(&seen);
    // The callback reads the session's statistics once it can: it runs with the probes
    // unlocked, so this must not deadlock the attaching thread.
    let stats_slot: Arc<Mutex<Option<pwru_core::StatsHandle>>> = Arc::default();
    let stats_in_callback = Arc::clone(&stats_slot);
    let mut session = tracer
        .attach_in_background(move |p| {
            if let Some(h) = stats_in_callback.lock().expect("stats slot").as_ref() {
                let _ = h.stats();
            }
            progress
                .lock()
                .expect("progress list")
                .push((p.done, p.total))
        })
        .expect("attach in background");
    *stats_slot.lock().expect("stats slot") = Some(session.stats_handle());
    let first = session.attached().len();
    assert!(first >= 1, "the session came back with nothing attached");
    let outcome = session.wait_attached();
    assert_eq!(outcome.cancelled, 0);
    let attached: HashSet<String> = outcome.attached.iter().cloned().collect();
    assert_eq!(
        attached.len(),
        outcome.attached.len(),
        "a target attached twice: {:?}",
        outcome.attached
    );
    let refused: HashSet<String> = outcome.refused.iter().map(|r| r.target.clone()).collect();
    assert!(attached.is_disjoint(&refused));
    let all: HashSet<String> = attached.union(&refused).cloned().collect();
    assert_eq!(all, targets, "attached + refused are not the targets");
    assert_eq!(session.attached(), outcome.attached.as_slice());
    let stats = session.stats();
    assert_eq!(stats.attached, outcome.attached.len());
    assert_eq!(stats.refused, outcome.refused.len());
    let handle = session.attach_handle();
    assert!(handle.is_finished());
    assert_eq!(handle.progress(), (targets.len(), targets.len()));
    let seen = seen.lock().expect("progress list");
    assert_eq!(seen.last(), Some(&(targets.len(), targets.len())));
    assert!(
        seen.windows(2).all(|w| w[0].0 <= w[1].0),
        "progress went backwards: {seen:?}"
    );
}

#[test]
fn the_first_targets_deliver_events_and_a_stop_ends_the_attach() {
    let name = "the_first_targets_deliver_events_and_a_stop_ends_the_attach";
    if skip_unless_root(name) {
        return;
    }
    let pair = VethPair::create(&tag('g', 1), 221).expect("veth pair");
    let port = 47113;
    let mut session = tracer(&format!("udp and dst port {port}"))
        .attach_in_background(|_| {})
        .expect("attach in background");
    let send = || {
        send_udp_from(
            &pair.ns_a,
            SocketAddr::from((pair.addr_a, 41000)),
            SocketAddr::from((pair.addr_b, port)),
            3,
            None,
        )
    };
    send();
    let got = collect(
        &mut session,
        |evs| !evs.is_empty(),
        Duration::from_millis(300),
        Duration::from_secs(10),
    );
    assert!(
        !got.events.is_empty(),
        "no event from the targets attached first"
    );
    session.stop();
    let outcome = session.attach_handle().wait();
    let total = session.attach_handle().progress().1;
    assert_eq!(
        outcome.attached.len() + outcome.refused.len() + outcome.cancelled,
        total,
        "a target neither attached, refused nor cancelled"
    );
    // Stopped: nothing runs any more, whatever the thread was doing.
    let runs = session.stats().runs.total();
    send();
    let after = drain(&mut session, Duration::from_millis(300));
    assert!(
        after.events.is_empty(),
        "events after the stop: {}",
        describe(&after.events)
    );
    assert_eq!(
        session.stats().runs.total(),
        runs,
        "programs ran after the stop"
    );
}
