//! The message texts of every corpus's `train.tsv` and `dev.tsv` under a datasets folder (folders
//! in name order, train before dev, lines without a tab skipped), shared by the throughput bench
//! and the profiling example so that both measure the same messages.

use std::path::Path;

pub fn corpus_lines(root: &Path) -> Vec<String> {
    let Ok(dirs) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = dirs.flatten().map(|d| d.path()).collect();
    paths.sort();
    let mut messages = Vec::new();
    for dir in paths {
        for split in ["train.tsv", "dev.tsv"] {
            if let Ok(text) = std::fs::read_to_string(dir.join(split)) {
                messages.extend(
                    text.lines()
                        .filter_map(|line| line.split_once('\t'))
                        .map(|(_, message)| message.to_owned()),
                );
            }
        }
    }
    messages
}
