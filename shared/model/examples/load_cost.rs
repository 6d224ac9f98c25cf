//! What opening a sealed model costs: loads the shipped model N times from plain ONNX bytes and
//! N times from a sealed container (open + load + zeroise), interleaved, and prints the medians.
//! `cargo run --release -p smsguard-model --example load_cost -- [N]`

use std::time::{Duration, Instant};

use smsguard_model::{ContainerKey, EdgeModel};

const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../edge/models/edge-int8.onnx"
);
const VOCAB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../edge/models/vocab.json");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::args().nth(1).map_or(Ok(30), |n| n.parse())?;
    let model = std::fs::read(MODEL)?;
    let vocab = std::fs::read_to_string(VOCAB)?;
    let key = ContainerKey::generate();
    let container = smsguard_container::seal(&key, &model)?;
    smsguard_model::init_runtime()?;
    // One load of each first, so neither side pays ONNX Runtime's first-session costs.
    EdgeModel::from_bytes(&model, &vocab)?;
    EdgeModel::from_container(&container, &key, &vocab)?;
    let (mut plain, mut sealed, mut open_only) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        plain.push(timed(|| EdgeModel::from_bytes(&model, &vocab).map(drop))?);
        sealed.push(timed(|| {
            EdgeModel::from_container(&container, &key, &vocab).map(drop)
        })?);
        open_only.push(timed(|| {
            smsguard_container::open(&key, &container)
                .map(drop)
                .map_err(Into::into)
        })?);
    }
    println!(
        "model {} bytes, {runs} loads each: plain p50 {:.2} ms, sealed p50 {:.2} ms, \
         open (decrypt + zeroise) alone p50 {:.3} ms; embedded() p50 {:.2} ms",
        model.len(),
        median_ms(plain),
        median_ms(sealed),
        median_ms(open_only),
        median_ms(
            (0..runs)
                .map(|_| timed(|| EdgeModel::embedded().map(drop)))
                .collect::<Result<_, _>>()?
        ),
    );
    Ok(())
}

fn timed(
    load: impl FnOnce() -> Result<(), smsguard_model::ModelError>,
) -> Result<Duration, smsguard_model::ModelError> {
    let start = Instant::now();
    load()?;
    Ok(start.elapsed())
}

fn median_ms(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}
