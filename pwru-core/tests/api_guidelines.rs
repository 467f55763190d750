//! The public surface against the Rust API guidelines, checked by the compiler: the common
//! traits each type promises (C-COMMON-TRAITS), Send/Sync where users move values between
//! threads and tasks (C-SEND-SYNC), errors that compose with `?` and `Box<dyn Error>`
//! (C-GOOD-ERR). A change that drops one of these breaks users, so it breaks this test first.

use std::error::Error as StdError;
use std::fmt::{Debug, Display};
use std::hash::Hash;
use std::str::FromStr;

use pwru_core::event::{BpfProg, DropReason, Interface, Meta, ProbeKind, Process, TcpFlags, Tuple};
use pwru_core::format::{FormatOptions, Formatter, TimestampMode};
use pwru_core::{
    Backend, Capture, Error, Event, EventStream, Item, KernelModules, LostEvents, MarkFilter,
    Options, ProbeAccess, Refusal, RunOutcomes, Session, Stats, StatsHandle, StopHandle, Target,
    Tracer, TracerBuilder,
};

fn send<T: Send>() {}
fn sync<T: Sync>() {}
fn owned<T: 'static>() {}
fn value<T: Debug + Clone + PartialEq>() {}
fn key<T: Debug + Copy + Eq + Hash>() {}
fn defaulted<T: Default>() {}
fn good_error<T: StdError + Send + Sync + 'static>() {}
fn parsed<T: FromStr + Display>()
where
    T::Err: StdError + Send + Sync + 'static,
{
}

#[test]
fn handles_move_across_threads_and_tasks() {
    // build() and attach() run on a blocking thread; the session or its stream then moves
    // into a task (tokio::spawn needs Send + 'static).
    send::<TracerBuilder>();
    send::<Tracer>();
    sync::<Tracer>();
    send::<Session>();
    owned::<Session>();
    send::<EventStream>();
    owned::<EventStream>();
    // Handles are shared between tasks.
    send::<StatsHandle>();
    sync::<StatsHandle>();
    send::<StopHandle>();
    sync::<StopHandle>();
    // Events and items cross channels.
    send::<Event>();
    sync::<Event>();
    send::<Item>();
    send::<Formatter>();
}

#[test]
fn values_have_the_common_traits() {
    value::<Event>();
    value::<Item>();
    value::<Meta>();
    value::<Interface>();
    value::<DropReason>();
    value::<Options>();
    value::<Capture>();
    value::<MarkFilter>();
    value::<KernelModules>();
    value::<Target>();
    value::<Refusal>();
    value::<Stats>();
    value::<RunOutcomes>();
    value::<LostEvents>();
    value::<FormatOptions>();
    key::<Backend>();
    key::<ProbeKind>();
    key::<Tuple>();
    key::<TcpFlags>();
    key::<Process>();
    key::<BpfProg>();
    key::<ProbeAccess>();
    key::<TimestampMode>();
    defaulted::<Options>();
    defaulted::<TracerBuilder>();
    defaulted::<Stats>();
    defaulted::<Backend>();
    defaulted::<FormatOptions>();
    parsed::<Backend>();
}

#[test]
fn errors_compose() {
    good_error::<Error>();
    good_error::<pwru_core::event::DecodeError>();
    good_error::<pwru_core::netns::NetnsError>();
    good_error::<pwru_core::symbols::SymbolsError>();
    // `?` into Box<dyn Error + Send + Sync> keeps the source chain.
    fn boxed() -> Result<(), Box<dyn StdError + Send + Sync>> {
        Err(Error::InvalidOption("x".into()))?
    }
    let e = boxed().unwrap_err();
    assert!(e.downcast_ref::<Error>().is_some(), "{e}");
}

#[test]
fn error_messages_read_as_sentences_inside_others() {
    // C-GOOD-ERR: lowercase start, no trailing period, so they chain as "context: cause".
    let samples = [
        Error::InvalidOption("ring buffer too large".into()).to_string(),
        "tcp port".parse::<Backend>().unwrap_err().to_string(),
    ];
    for m in samples {
        let first = m.chars().next().unwrap_or(' ');
        assert!(!first.is_uppercase(), "{m:?} starts with a capital");
        assert!(!m.ends_with('.'), "{m:?} ends with a period");
    }
}
