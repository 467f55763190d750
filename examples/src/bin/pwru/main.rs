//! pwru: a cilium/pwru-compatible command line on pwru-core.
mod args;

fn main() {
    use clap::Parser;
    let a = args::Args::parse();
    if let Some(flag) = a.unsupported() {
        eprintln!("pwru: {flag} is not supported by pwru-rs yet");
        std::process::exit(2);
    }
}
