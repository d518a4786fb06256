//! `wsl-sim`: the WSL simulator's command line (also WSL's `/init` inside an instance).

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let code = match wsl_sim::sim::main(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("wsl-sim: {err}");
            if matches!(err, wsl_sim::sim::error::Error::Usage(_)) {
                2
            } else {
                1
            }
        }
    };
    std::process::exit(code);
}
