//! Dumps `normalize` + fingerprint id for every corpus line and a seeded set of adversarial
//! strings, one JSON object per line, so that two builds of the pipeline can be compared with
//! `cmp` (the output must stay byte-identical: a model was trained on it).
//!
//! Usage: `cargo run --release -p smsguard-core --example dump -- OUT.jsonl [DATASETS_DIR]`.
//! Lines are corpus lines first (datasets sorted by name, `train.tsv` then `dev.tsv`), then the
//! generated strings. Message text goes to the output file only, never to the terminal.

use std::error::Error;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use smsguard_core::{normalize, MinHasher};

/// Number of generated adversarial strings appended after the corpus lines.
const GENERATED: usize = 5000;
/// Seed of the generator; fixed so that every dump holds the same strings.
const SEED: u64 = 0x5eed_d0d0_2024_0617;

/// Fragments the generator glues together: every stage of the pipeline has something to bite.
const PIECES: &[&str] = &[
    "a",
    "b",
    "x",
    "X",
    "xx",
    "XXXX",
    "xxx",
    "v",
    "V",
    "w",
    "e",
    "i",
    "n",
    "l",
    "1",
    "0",
    "3",
    "4",
    "5",
    "7",
    "9",
    "@",
    "$",
    ".",
    "..",
    ",",
    "-",
    "*",
    "_",
    "|",
    "~",
    "+",
    "#",
    "/",
    ":",
    "//",
    " ",
    "  ",
    "\n",
    "\t",
    "\r",
    "'",
    "’",
    "<",
    ">",
    "<num>",
    "<url>",
    "<phone>",
    "<email>",
    "http",
    "https",
    "hxxp",
    "www",
    ".com",
    ".in/",
    ".co.uk",
    "tinyurl",
    "com",
    "DIGIT",
    "URL",
    "CELLPHONE",
    "PHONE",
    "NAME",
    "QQ",
    "WECHAT",
    "13800138000",
    "+44 7700 900123",
    "1.234,56",
    "2024",
    "fr33",
    "mp3",
    "win10",
    "sharp@the",
    "加",
    "微",
    "信",
    "威信",
    "薇信",
    "貸款",
    "發票",
    "月",
    "号",
    "元",
    "。",
    "、",
    "…",
    "“",
    "【",
    "】",
    "Р",
    "А",
    "У",
    "Л",
    "а",
    "о",
    "е",
    "р",
    "и",
    "λ",
    "α",
    "ο",
    "Ａ",
    "１",
    "！",
    "\u{3000}",
    "\u{200B}",
    "\u{00AD}",
    "\u{FEFF}",
    "\u{202E}",
    "\u{FE0F}",
    "\u{0007}",
    "\u{0085}",
    "\u{E0041}",
    "ﬁ",
    "①",
    "𝐀",
    "𝟗",
    "⼈",
    "😀",
    "🎁",
    "é",
    "É",
    "ß",
    "İ",
    "Σ",
    "ǅ",
    "é",
    "Ⅻ",
    "㎏",
    "free",
    "FREE",
    "win",
    "click",
    "bit.ly/ab",
    "user@mail.com",
    "v-x",
    "+v",
    "扣扣",
    "菠菜",
    "xx月xx号",
    "满xxx元",
    "9717XXXX01",
];

fn datasets_root(arg: Option<String>) -> PathBuf {
    arg.map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets"),
        PathBuf::from,
    )
}

/// Texts of every `train.tsv` and `dev.tsv` line (after the first TAB), datasets sorted by name.
fn corpus_texts(root: &Path) -> Result<Vec<String>, Box<dyn Error>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(|e| format!("reading {}: {e}", root.display()))?
        .flatten()
        .map(|d| d.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut texts = Vec::new();
    for dir in dirs {
        for split in ["train.tsv", "dev.tsv"] {
            let Ok(content) = std::fs::read_to_string(dir.join(split)) else {
                continue;
            };
            texts.extend(
                content
                    .lines()
                    .filter_map(|line| line.split_once('\t'))
                    .map(|(_, text)| text.to_owned()),
            );
        }
    }
    Ok(texts)
}

/// SplitMix64 stream: a small, dependency-free, seeded generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        smsguard_core::fingerprint::splitmix64(self.0)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One adversarial string: fragments from `PIECES`, and now and then an arbitrary scalar value.
fn generated_text(rng: &mut Rng) -> String {
    let len = rng.below(40);
    let mut text = String::new();
    for _ in 0..len {
        if rng.below(10) == 0 {
            let any = char::from_u32(rng.below(0x3_0000) as u32).unwrap_or('\u{FFFD}');
            text.push(any);
        } else {
            text.push_str(PIECES[rng.below(PIECES.len())]);
        }
    }
    text
}

// `anyhow` is not a dependency of this crate; a boxed error is enough for an example.
fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let out_path = args.next().ok_or("usage: dump OUT.jsonl [DATASETS_DIR]")?;
    let mut texts = corpus_texts(&datasets_root(args.next()))?;
    let mut rng = Rng(SEED);
    texts.extend((0..GENERATED).map(|_| generated_text(&mut rng)));

    let hasher = MinHasher::new();
    let file = std::fs::File::create(&out_path).map_err(|e| format!("creating {out_path}: {e}"))?;
    let mut out = BufWriter::new(file);
    for text in &texts {
        let normalized = normalize(text);
        let fingerprint = hasher.fingerprint(&normalized.text);
        let row = serde_json::json!({
            "normalized": normalized,
            "fingerprint": fingerprint.to_hex(),
        });
        serde_json::to_writer(&mut out, &row)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    println!("dump: {} texts written to {out_path}", texts.len());
    Ok(())
}
