//! The `strata` command: parse, run, print one error line, exit.
//!
//! Exit codes: 0 success, 1 failure, 2 usage error (bad flags or values).
mod cli;

fn main() {
    std::process::exit(cli::main());
}
