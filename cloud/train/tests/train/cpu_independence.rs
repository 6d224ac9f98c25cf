//! One message, one verdict on every x86-64 CPU. ONNX Runtime picks its int8 kernels by CPU:
//! with AVX-512 VNNI (or AVX-VNNI) u8×s8 products accumulate in int32, while AVX2 without VNNI
//! adds pairs of them in a saturating int16 (`vpmaddubsw`). This test computes the int8 model's
//! logits here and again in a child process under `qemu-x86_64 -cpu EPYC`, an emulated CPU with
//! AVX2 but neither AVX-512 nor VNNI, and wants them bit for bit the same. With full 8-bit conv
//! weights the two differ (the pair sums saturate under emulation); the exporter's 7-bit conv
//! weights make every kernel compute the same exact sums.
//!
//! The same holds for the full-convolution variant of the ablation (group-1 `QLinearConv`s,
//! which ONNX Runtime runs through its u8×s8 GEMM rather than the depthwise kernel): its logits
//! are part of the same report.
//!
//! `qemu-x86_64` comes from Debian's `qemu-user` package, which `.ci/setup` installs. On a host
//! without VNNI both runs take the AVX2 path, so there the test checks less (same path twice);
//! `quantize`'s unit test checks the int16 bound itself on any host.

use std::path::{Path, PathBuf};
use std::process::Command;

use smsguard_train::config::{ArchConfig, ConvKind};
use smsguard_train::quantize::{export_int8_calibrated, synthetic_ids};

use super::parity::{mid_config, random_weights, run_batch, session, synthetic_inputs};
use super::variants::variant_weights;

/// Set in the child process: where it writes its CPU features and logits.
const CHILD_OUTPUT_ENV: &str = "SMSGUARD_CPU_PARITY_OUT";
const TEST_NAME: &str = "cpu_independence::int8_logits_are_bit_identical_on_an_avx2_only_cpu";
/// A QEMU CPU model with AVX2 and FMA but no AVX-512 and no VNNI (AMD EPYC, Zen 1).
const AVX2_ONLY_CPU: &str = "EPYC";

#[test]
fn int8_logits_are_bit_identical_on_an_avx2_only_cpu() {
    let report = cpu_report();
    if let Some(out) = std::env::var_os(CHILD_OUTPUT_ENV) {
        std::fs::write(out, report).expect("writing the child's report");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let child_out = dir.path().join("avx2.txt");
    run_under_qemu(&child_out);
    let emulated = std::fs::read_to_string(&child_out).expect("the child wrote no report");
    let (emulated_cpu, emulated_logits) = emulated.split_once('\n').expect("two parts");
    assert_eq!(
        emulated_cpu, "avx2=true avx512f=false vnni=false",
        "the emulated CPU must offer AVX2 without AVX-512 or VNNI"
    );
    let (native_cpu, native_logits) = report.split_once('\n').expect("two parts");
    println!("native CPU: {native_cpu}; emulated: {emulated_cpu}");
    let differing = native_logits
        .split(' ')
        .zip(emulated_logits.split(' '))
        .filter(|(a, b)| a != b)
        .count();
    assert_eq!(
        differing, 0,
        "{differing} int8 logits differ between this CPU ({native_cpu}) and an AVX2-only one"
    );
    assert_eq!(native_logits.len(), emulated_logits.len());
}

/// The CPU's relevant features, a newline, then the int8 logits of two seeded models (the
/// shipped form, then full convolutions) on seeded inputs, as the hex bits of each f32.
fn cpu_report() -> String {
    let cfg = mid_config();
    let full = ArchConfig {
        conv: ConvKind::Full,
        ..mid_config()
    };
    let bits: Vec<String> = [
        int8_logits(&cfg, &random_weights(&cfg, 3)),
        int8_logits(&full, &variant_weights(&full, 3)),
    ]
    .iter()
    .flatten()
    .map(|v| format!("{:08x}", v.to_bits()))
    .collect();
    format!("{}\n{}", cpu_features(), bits.join(" "))
}

fn int8_logits(cfg: &ArchConfig, weights: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<f32> {
    let calibration = synthetic_ids(cfg, 128, 100);
    let int8 = export_int8_calibrated(cfg, weights, &[], &calibration).expect("int8 export");
    let inputs = synthetic_inputs(cfg, 200, 200);
    let logits = run_batch(&mut session(&int8), &inputs, cfg.num_labels());
    logits.into_iter().flatten().collect()
}

fn cpu_features() -> String {
    format!(
        "avx2={} avx512f={} vnni={}",
        std::arch::is_x86_feature_detected!("avx2"),
        std::arch::is_x86_feature_detected!("avx512f"),
        std::arch::is_x86_feature_detected!("avx512vnni")
            || std::arch::is_x86_feature_detected!("avxvnni"),
    )
}

/// Runs this very test in this test binary under QEMU's user-mode emulator.
fn run_under_qemu(child_out: &Path) {
    let qemu = find_on_path("qemu-x86_64").unwrap_or_else(|| {
        panic!("qemu-x86_64 not found: install Debian's qemu-user (.ci/setup does)")
    });
    let this_binary = std::env::current_exe().expect("test binary path");
    let output = Command::new(qemu)
        .args(["-cpu", AVX2_ONLY_CPU])
        .arg(this_binary)
        .args(["--exact", TEST_NAME, "--test-threads=1"])
        .env(CHILD_OUTPUT_ENV, child_out)
        .output()
        .expect("starting qemu-x86_64");
    assert!(
        output.status.success(),
        "the child under qemu failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout)
    );
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}
