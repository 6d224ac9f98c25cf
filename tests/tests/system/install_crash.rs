//! kill -9 during a model install: a real child process (`model-install-loop`) installs updates
//! into one store round after round, alternating between two real clouds that serve different
//! models signed by one key, and is killed with SIGKILL at several points (during its first
//! install, right after an install, and tens to hundreds of milliseconds into the next open,
//! download, install or close). After every kill the store must open and serve one of the two
//! models, the installed update opening cleanly: never neither, never a half-written one.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use smsguard_edge::engine::{embedded_model_version, Source};
use smsguard_system_tests::{
    engine_config, now_ms, open_engine, other_model_dir, samples, TestCloud,
};

/// (installs the child reports before the kill, then milliseconds more).
const KILL_POINTS: [(usize, u64); 8] = [
    (0, 0),
    (0, 400),
    (1, 0),
    (1, 30),
    (1, 120),
    (2, 60),
    (2, 250),
    (3, 500),
];

#[test]
fn a_model_install_killed_at_any_point_leaves_the_old_or_the_new_model() {
    let models = other_model_dir().unwrap();
    let cloud_a =
        TestCloud::start(|config| config.edge_model_dir = Some(models.path().to_path_buf()))
            .unwrap();
    let key = cloud_a.data_dir().join("signing.key");
    let cloud_b = TestCloud::start(|config| config.signing_key_path = Some(key)).unwrap();
    assert_eq!(cloud_a.model_public_key(), cloud_b.model_public_key());
    assert_ne!(cloud_a.model_version(), cloud_b.model_version());
    let servable = [
        cloud_a.model_version().to_owned(),
        cloud_b.model_version().to_owned(),
        embedded_model_version(),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (point, (installs, pause_ms)) in KILL_POINTS.into_iter().enumerate() {
        let mut child = Command::new(env!("CARGO_BIN_EXE_model-install-loop"))
            .arg(dir.path())
            .args([cloud_a.model_public_key(), &cloud_a.url(), &cloud_b.url()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Held until the kill: a closed pipe could end the child with EPIPE first.
        let _stdout = wait_for_installs(&mut child, installs, point);
        std::thread::sleep(Duration::from_millis(pause_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let engine = open_engine(dir.path(), engine_config(None)).unwrap();
        let stats = engine.stats();
        let context = format!("kill point {point} ({installs} installs + {pause_ms} ms)");
        assert_eq!(stats.store_error, None, "{context}");
        assert_eq!(stats.installed_model_error, None, "{context}: {stats:?}");
        assert_eq!(stats.model_error, None, "{context}");
        let version = stats.model_version.clone().unwrap_or_default();
        assert!(servable.contains(&version), "{context}: {version}");
        let decision = engine.classify(&samples::sender(900), &samples::phishing(3), now_ms());
        assert_eq!(decision.source, Source::Local, "{context}");
        assert!(decision.spam_score > 0.5, "{context}: {decision:?}");
        engine.close().unwrap();
    }
}

/// Reads `installed ...` lines until `count` were seen and returns the rest of the child's
/// stdout; panics with the child's stderr if it stopped first.
fn wait_for_installs(
    child: &mut Child,
    count: usize,
    point: usize,
) -> std::io::Lines<BufReader<ChildStdout>> {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for seen in 0..count {
        match lines.next() {
            Some(Ok(line)) if line.starts_with("installed ") => {}
            other => {
                let _ = child.kill();
                let mut stderr = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut stderr)
                    .unwrap();
                panic!("kill point {point}: after {seen} installs the child printed {other:?}\n{stderr}");
            }
        }
    }
    lines
}
