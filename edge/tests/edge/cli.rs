use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::fixtures::{model_file, OBVIOUS_HAM, OBVIOUS_SPAM};

fn smsguard(args: &[&str], stdin: &[u8]) -> Output {
    smsguard_with_env(args, stdin, &[])
}

/// Runs the CLI with a fresh store of its own (never the user's real one).
fn smsguard_with_env(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let store = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_smsguard"))
        .args(args)
        .env("SMSGUARD_DATA_DIR", store.path())
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("smsguard starts");
    // A CLI that refuses its arguments exits without reading its input: a broken pipe then.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .expect("stdout is UTF-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("every stdout line is JSON"))
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn no_arguments_shows_help() {
    let output = smsguard(&[], b"");
    assert!(!output.status.success());
    let help = stderr(&output);
    assert!(
        help.contains("Usage") && help.contains("classify") && help.contains("normalize"),
        "{help}"
    );
}

#[test]
fn normalize_writes_one_object_per_line_and_survives_invalid_utf8() {
    let input = b"WIN a FREE prize at http://example.top\n\xff\xfe broken\nhello  there\n";
    let output = smsguard(&["normalize"], input);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 3);
    for good in [&lines[0], &lines[2]] {
        assert!(good["normalized"].is_string());
        assert!(good["transforms"].is_object());
        assert!(good["masked"].is_array());
        let fingerprint = good["fingerprint"].as_str().unwrap();
        assert!(fingerprint.len() == 16 && fingerprint.chars().all(|c| c.is_ascii_hexdigit()));
    }
    assert!(lines[0]["normalized"].as_str().unwrap().contains("<url>"));
    assert!(lines[0]["transforms"]["url_masked"].as_u64().unwrap() >= 1);
    assert_eq!(lines[1]["line"], 2);
    assert!(lines[1]["error"].as_str().unwrap().contains("UTF-8"));
    assert!(stderr(&output).contains("line 2"));
}

#[test]
fn normalize_reads_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("messages.txt");
    std::fs::write(&path, "Hello World\r\nsecond line").unwrap();
    let output = smsguard(&["normalize", "--file", path.to_str().unwrap()], b"");
    assert!(output.status.success());
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["normalized"], "hello world");
    let missing = smsguard(&["normalize", "--file", "/nonexistent/messages.txt"], b"");
    assert!(!missing.status.success());
}

#[test]
fn classify_one_message_as_json() {
    let output = smsguard(&["classify", "--json", OBVIOUS_SPAM[0]], b"");
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 1);
    let verdict = &lines[0];
    assert_eq!(verdict["source"], "local");
    assert!(verdict["label"].is_string());
    let score = verdict["score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&score));
    let action = verdict["action"].as_str().unwrap();
    assert!(["allow", "tag", "quarantine", "block"].contains(&action));
    // The verdict never echoes the message.
    assert!(!String::from_utf8_lossy(&output.stdout).contains("09061701461"));
}

#[test]
fn classify_lines_from_stdin_readable() {
    let input = format!("{}\n{}\n\n", OBVIOUS_HAM[0], OBVIOUS_SPAM[1]);
    let output = smsguard(&["classify"], input.as_bytes());
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("line 1: ham "), "{text}");
    // Each line says why: the obvious (English) ham stayed under the en market's tag threshold.
    assert!(
        lines[0].contains("source=local") && lines[0].contains("below the en tag threshold"),
        "{text}"
    );
    assert!(lines[0].ends_with("-> allow"), "{text}");
    assert!(
        lines[1].starts_with("line 2: ") && lines[1].contains("action="),
        "{text}"
    );
    assert!(lines[1].contains(" threshold "), "{text}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 3: skipped: empty message"));
}

#[test]
fn the_market_is_the_scripts_unless_the_device_sets_one() {
    // (flags, message, market the reason must name)
    let table: [(&[&str], &str, &str); 4] = [
        (&[], "Are we still on for lunch tomorrow?", "en"),
        (&[], "明天下午三点开会，记得带上周的报告", "zh"),
        (
            &["--market", "zh"],
            "Are we still on for lunch tomorrow?",
            "zh",
        ),
        (
            &["--market", "en"],
            "明天下午三点开会，记得带上周的报告",
            "en",
        ),
    ];
    for (flags, message, market) in table {
        let args: Vec<&str> = ["classify"].iter().chain(flags).copied().collect();
        let output = smsguard(&args, format!("{message}\n").as_bytes());
        assert!(output.status.success(), "{}", stderr(&output));
        let text = String::from_utf8(output.stdout).unwrap();
        assert!(
            text.contains(&format!(" the {market} tag threshold ")),
            "{flags:?}: {text}"
        );
    }
    let output = smsguard(&["classify", "--market", "fr"], b"hello\n");
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("unknown market"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn classify_tsv_reports_truth_and_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("labelled.tsv");
    let mut tsv = Vec::new();
    for text in OBVIOUS_HAM {
        writeln!(tsv, "ham\t{text}").unwrap();
    }
    for text in OBVIOUS_SPAM {
        writeln!(tsv, "spam\t{text}").unwrap();
    }
    tsv.extend_from_slice(b"ham\t\xff\xfe\n");
    std::fs::write(&path, tsv).unwrap();
    let output = smsguard(
        &[
            "classify",
            "--tsv",
            "--json",
            "--file",
            path.to_str().unwrap(),
        ],
        b"",
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 8);
    assert_eq!(lines[0]["truth"], "ham");
    assert_eq!(lines[7]["truth"], "spam");
    let log = stderr(&output);
    assert!(
        log.contains("accuracy") && log.contains("1 lines skipped"),
        "{log}"
    );
    assert!(log.contains(":9: invalid UTF-8"), "{log}");
}

#[test]
fn classify_with_explicit_model_files() {
    let model = model_file("edge-fp32.onnx");
    let vocab = model_file("vocab.json");
    let args = [
        "classify",
        "--json",
        "--model",
        model.to_str().unwrap(),
        "--vocab",
        vocab.to_str().unwrap(),
        OBVIOUS_HAM[1],
    ];
    let output = smsguard(&args, b"");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(json_lines(&output)[0]["source"], "local");
    // --model without --vocab is a usage error.
    let output = smsguard(&["classify", "--model", model.to_str().unwrap(), "hi"], b"");
    assert!(!output.status.success());
}

#[test]
fn mismatched_vocabulary_file_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = dir.path().join("vocab.json");
    std::fs::write(&vocab, smsguard_core::features::word_level_json(&['a'], 4)).unwrap();
    let model = model_file("edge-int8.onnx");
    let output = smsguard(
        &[
            "classify",
            "--model",
            model.to_str().unwrap(),
            "--vocab",
            vocab.to_str().unwrap(),
            "secret text 555",
        ],
        b"",
    );
    assert!(!output.status.success());
    let log = stderr(&output);
    assert!(log.contains("vocabulary"), "{log}");
    assert!(
        !log.contains("secret text"),
        "the message leaked into the error"
    );
}

#[test]
fn unusable_runtime_library_names_the_script() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("libonnxruntime.so");
    std::fs::write(&fake, b"not a shared library").unwrap();
    for library in [fake.to_str().unwrap(), "/nonexistent/libonnxruntime.so"] {
        let output = smsguard_with_env(&["classify", "hello"], b"", &[("ORT_DYLIB_PATH", library)]);
        assert!(!output.status.success());
        let log = stderr(&output);
        assert!(log.contains("edge/provision-onnxruntime.sh"), "{log}");
    }
}
