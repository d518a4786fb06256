//! `wsl-sim`: the WSL simulator's command line (also WSL's `/init` inside an instance).

fn main() {
    let mut all = std::env::args_os();
    let argv0 = all.next().unwrap_or_default();
    let args: Vec<std::ffi::OsString> = all.collect();
    if let Some(code) = wsl_sim::sim::dispatch_by_name(&argv0, &args) {
        std::process::exit(code);
    }
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
