/// glibc's allocator serialises the runtime's worker threads on its arena
/// locks when every row allocates and frees on a different thread; mimalloc
/// keeps per-thread heaps. See docs/ARCHITECTURE.md, "The runner's cost".
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = invitesync::cli::parse();
    std::process::exit(invitesync::cli::main(cli));
}
