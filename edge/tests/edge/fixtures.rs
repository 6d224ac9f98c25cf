//! Hand-written messages (no corpus text) and paths to the shipped model files.

use std::path::PathBuf;

pub const OBVIOUS_SPAM: [&str; 4] = [
    "Congratulations! You have WON a £1000 cash prize. Call 09061701461 now to claim, T&C apply",
    "URGENT: your bank account has been suspended. Verify your details at http://secure-bank-login.example.top now",
    "FREE entry to win a brand new iPhone! Text WIN to 80088 now. Claim your prize today!",
    "Your parcel could not be delivered. Pay the 1.99 redelivery fee at http://parcel-redelivery.example.xyz",
];

pub const OBVIOUS_HAM: [&str; 4] = [
    "Are we still on for lunch tomorrow? I can pick you up at 12.",
    "Ok see you at home later, love you",
    "Sorry I missed your call, I'm in a meeting. Talk tonight?",
    "Don't forget to bring the charger when you come over",
];

pub fn model_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name)
}

pub fn int8_model() -> Vec<u8> {
    std::fs::read(model_file("edge-int8.onnx")).expect("shipped int8 model")
}

pub fn vocab_json() -> String {
    std::fs::read_to_string(model_file("vocab.json")).expect("shipped vocabulary")
}
