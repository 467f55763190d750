//! pwru: a cilium/pwru-compatible command line on pwru-core.
//!
//! Argument parsing and printing only; everything else is the library.

mod args;
mod demo;
mod output;
mod rotation;
mod run;
mod series_out;
mod writer;

use clap::Parser;
use pwru_examples::signals::Signals;

fn main() {
    let args = args::Args::parse();
    // One listener for the whole run, before any filter is compiled.
    let mut signals = match Signals::install("pwru") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pwru: cannot listen for SIGINT/SIGTERM: {e}");
            std::process::exit(1);
        }
    };
    let result = if args.demo {
        demo::run(&args, &mut signals)
    } else {
        run::trace(&args, &mut signals)
    };
    if let Err(e) = result {
        eprintln!("pwru: {}", e.message());
        std::process::exit(e.exit_status());
    }
}
