fn main() {
    let cli = invitesync::cli::parse();
    std::process::exit(invitesync::cli::main(cli));
}
