use clap::Parser;

fn main() {
    let cli = invitesync::cli::Cli::parse();
    std::process::exit(invitesync::cli::main(cli));
}
