//! pwru: a cilium/pwru-compatible command line on pwru-core.
//!
//! Argument parsing and printing only; everything else is the library.

mod args;
mod demo;
mod output;
mod run;

use clap::Parser;

fn main() {
    let args = args::Args::parse();
    if let Some(flag) = args.unsupported() {
        eprintln!(
            "pwru: {flag} is not supported by pwru-rs yet; drop the flag (see --help for what is)"
        );
        std::process::exit(2);
    }
    let result = if args.demo {
        demo::run(&args)
    } else {
        run::trace(&args, None)
    };
    match result {
        Ok(()) => {}
        Err(e) => {
            eprintln!("pwru: {e}");
            std::process::exit(1);
        }
    }
}
