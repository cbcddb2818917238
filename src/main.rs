//! The `relayscan` binary: all the work is in the library, which parses
//! the command line, runs it, and returns the exit code the README promises.

mod allocator;

/// mimalloc instead of the system allocator: a scan allocates and frees
/// small strings and vectors for every reply, and glibc's malloc and free
/// were about a sixth of the scanner's CPU in a profile of the default
/// suite (docs/performance.md has the figures with and without).
#[global_allocator]
static ALLOCATOR: allocator::Mimalloc = allocator::Mimalloc;

fn main() {
    std::process::exit(relayscan::run());
}
