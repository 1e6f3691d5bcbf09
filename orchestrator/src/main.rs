//! The `weir` binary: parse arguments, run, map errors to exit codes.

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = weir::cli::Cli::parse();
    if let Err(e) = weir::cli::run(cli).await {
        // A rejection was printed with its reason already.
        if !matches!(e, weir::cli::CliError::Rejected) {
            eprintln!("error: {e}");
        }
        std::process::exit(e.exit_code());
    }
}
