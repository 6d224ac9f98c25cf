//! The AFL++ entry point: `fuzz-afl TARGET` runs the harness of that name (see
//! `smsguard_fuzz::TARGETS`) in AFL's persistent mode. Build with
//! `cargo afl build --release -p smsguard-fuzz --features afl`; the README has the run command.

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(target) = smsguard_fuzz::target(&name) else {
        let names: Vec<&str> = smsguard_fuzz::TARGETS.iter().map(|t| t.name).collect();
        eprintln!("usage: fuzz-afl TARGET, one of: {}", names.join(", "));
        std::process::exit(2);
    };
    let run = target.run;
    afl::fuzz!(|data: &[u8]| {
        run(data);
    });
}
