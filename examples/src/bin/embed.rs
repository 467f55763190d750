//! The smallest complete program embedding pwru-core: build, attach, read the stream.
//!
//! `sudo embed [PCAP-FILTER]` prints the function, drop reason and tuple of the next 20
//! matching packet events.

use futures::StreamExt;
use pwru_core::{Item, Tracer};

fn main() -> Result<(), pwru_core::Error> {
    let filter = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let tracer = Tracer::builder().pcap_filter(filter).build()?;
    let session = tracer.attach()?;
    eprintln!(
        "tracing with {} ({} attached)",
        session.backend(),
        session.attached().len()
    );

    // The stream owns the session; dropping it at the end detaches everything.
    let mut stream = session.into_stream().take(20);
    futures::executor::block_on(async {
        while let Some(item) = stream.next().await {
            match item {
                Ok(Item::Event(ev)) => {
                    let reason = ev.drop_reason.map(|r| r.to_string()).unwrap_or_default();
                    let tuple = ev.tuple.map(|t| t.to_string()).unwrap_or_default();
                    println!("{:#x} {} {reason} {tuple}", ev.skb, ev.function);
                }
                Ok(Item::Lost(lost)) => eprintln!("{lost}"),
                Ok(_) => {}
                Err(e) if !e.is_fatal() => eprintln!("{e}"),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })
}
