//! kill -9 in the middle of a burst, and a torn log tail: no returned decision is lost.

use super::*;

/// Runs `smsguard crash-burst` with `durability` in `dir`, kills it with SIGKILL after `lines`
/// returned decisions, and returns every `id state` line it printed (each one a `classify`
/// that returned).
/// The store a `smsguard` process left in `dir`, opened with the key file it created there.
fn open_cli_store(dir: &Path) -> Store {
    let key = std::fs::read_to_string(dir.join("store.key")).expect("the CLI's key file");
    let options = StoreOptions {
        key: Some(StoreKey::from_hex(&key).unwrap()),
        ..StoreOptions::new(1 << 20, Durability::Process)
    };
    Store::open_with(dir, options).unwrap()
}

fn burst_then_kill_9(dir: &Path, durability: &str, lines: usize) -> Vec<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_smsguard"))
        .args([
            "crash-burst",
            "--count",
            "100000",
            "--durability",
            durability,
        ])
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("smsguard starts");
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    for line in out.by_ref().take(lines) {
        printed.push(line.unwrap());
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    // Lines already in the pipe were returned too.
    printed.extend(out.map_while(Result::ok));
    assert!(printed.len() >= lines, "the child died early");
    printed
}

/// Kills a `smsguard crash-burst` child with SIGKILL in the middle of its burst and checks that
/// every id it printed (i.e. every `classify` that returned) is stored in the printed state, and
/// that nothing else but at most the one in-flight message was stored. With the default
/// durability nothing is fsynced: the decision log in the page cache carries the decisions sled
/// had not written yet. (With `--durability none` this test fails: sled loses up to its last
/// 500 ms of writes.)
#[test]
fn kill_9_mid_burst_loses_no_returned_decision() {
    let dir = tempfile::tempdir().unwrap();
    let printed = burst_then_kill_9(dir.path(), "process", 300);
    let store = open_cli_store(dir.path());
    let mut seen = std::collections::HashSet::new();
    for line in &printed {
        let (id, state) = line.split_once(' ').expect("`id state` lines");
        let id: u64 = id.parse().unwrap();
        assert!(
            id > 0 && seen.insert(id),
            "id {id} returned twice or unstored"
        );
        let record = store
            .message(id)
            .unwrap()
            .unwrap_or_else(|| panic!("id {id} lost"));
        assert_eq!(record.state.as_str(), state);
        assert!(matches!(
            record.state,
            MessageState::Delivered | MessageState::Quarantined
        ));
    }
    let stored = store.messages().unwrap();
    assert!(
        stored.len() <= printed.len() + 1,
        "{} records for {} returned decisions",
        stored.len(),
        printed.len()
    );
    assert!(stored.iter().any(|r| r.state == MessageState::Quarantined));
    assert!(stored.iter().any(|r| r.state == MessageState::Delivered));
    let quarantined = stored
        .iter()
        .filter(|r| r.state == MessageState::Quarantined)
        .count();
    assert_eq!(
        store.quarantined().unwrap().len(),
        quarantined,
        "index matches records"
    );
    // New ids after the crash never collide with stored ones.
    let next = store.next_id().unwrap();
    assert!(stored.iter().all(|r| r.id < next));
}

/// The log segments (`decisions-*.log`) in `dir`, oldest first.
fn log_segments(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut segments: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with("decisions-") && name.ends_with(".log")
        })
        .collect();
    segments.sort();
    segments
}

/// After a kill -9, the decision log alone (copied into an empty directory, with a write torn
/// in half appended) brings back every returned decision; the torn tail is skipped and counted,
/// and a second open replays nothing.
#[test]
fn a_torn_log_tail_is_skipped_and_counted_and_earlier_decisions_replay() {
    let dir = tempfile::tempdir().unwrap();
    let printed = burst_then_kill_9(dir.path(), "process", 40);
    let segments = log_segments(dir.path());
    assert!(!segments.is_empty(), "the killed process left its log");
    let fresh = tempfile::tempdir().unwrap();
    for segment in &segments {
        std::fs::copy(segment, fresh.path().join(segment.file_name().unwrap())).unwrap();
    }
    // The log's records are sealed with the CLI's key.
    std::fs::copy(dir.path().join("store.key"), fresh.path().join("store.key")).unwrap();
    let last = fresh
        .path()
        .join(segments.last().unwrap().file_name().unwrap());
    let bytes = std::fs::read(&last).unwrap();
    let (frames, damaged, _) = smsguard_edge::store::read_log_frames(&bytes);
    assert_eq!(damaged, 0, "the kill fell between writes");
    let whole = smsguard_edge::store::log_frame(frames.last().unwrap());
    let torn = &whole[..whole.len() / 2];
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap();
    std::io::Write::write_all(&mut log, torn).unwrap();
    drop(log);

    let store = open_cli_store(fresh.path());
    let recovery = store.recovery();
    assert_eq!(
        (recovery.damaged_spans, recovery.damaged_bytes),
        (1, torn.len() as u64)
    );
    assert!(recovery.replayed >= printed.len(), "{recovery:?}");
    assert_eq!(recovery.already_stored, 0);
    for line in &printed {
        let (id, state) = line.split_once(' ').unwrap();
        let record = store
            .message(id.parse().unwrap())
            .unwrap()
            .unwrap_or_else(|| panic!("id {id} lost"));
        assert_eq!(record.state.as_str(), state);
    }
    let counters = store.counters().unwrap();
    assert_eq!(counters["log.damaged_spans"], 1);
    assert_eq!(counters["log.replayed"], recovery.replayed as u64);
    assert_eq!(counters["classified"], recovery.replayed as u64);
    let stored = store.message_count();
    drop(store);

    // Replay emptied the log: a second open finds nothing to replay or skip.
    let store = open_cli_store(fresh.path());
    let again = store.recovery();
    assert_eq!((again.replayed, again.damaged_spans), (0, 0), "{again:?}");
    assert_eq!(store.message_count(), stored);
    assert_eq!(store.counters().unwrap()["log.damaged_spans"], 1);
}
