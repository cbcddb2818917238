//! The `relayscan` binary: all the work is in the library, which parses
//! the command line, runs it, and returns the exit code the README promises.

fn main() {
    std::process::exit(relayscan::run());
}
