//! Prints variant scores of a few hand-written texts and, per corpus file given as argument
//! (`label<TAB>text` lines), the mean variant score and the share above 0.5 per label.
//! `cargo run -p smsguard-scoring --example variant_probe -- /work/shared/datasets/zh_mudou_spam/dev.tsv`
use smsguard_scoring::{PreparedMessage, Scorer, VariantScorer};
fn main() {
    let v = VariantScorer::default();
    for t in [
        "加 薇 信 领 取",
        "V1agra fr33",
        "我們明天一起去吃飯吧，記得帶傘。",
        "ｈｅｌｌｏ，明天下午３点开会，请准时参加。",
        "Hi mum, I'll be home late tonight.",
        "Frее prizе clаim nоw",
        "加V信了解详情",
        "w e i x i n 领取红包",
        "Call me at 5pm ok?",
        "Ｍｅｅｔｉｎｇ ａｔ ３ｐｍ ｔｏｍｏｒｒｏｗ",
    ] {
        let p = PreparedMessage::new("1", t, 0, "d");
        let s = v.score(&p.context()).unwrap();
        println!(
            "{:.3} {} | {:?}",
            s.score, s.reason, p.normalized.transforms
        );
    }
    for path in std::env::args().skip(1) {
        let data = std::fs::read_to_string(&path).unwrap();
        let mut stats = std::collections::BTreeMap::<String, (f32, usize, usize)>::new();
        for line in data.lines() {
            let Some((label, text)) = line.split_once('\t') else {
                continue;
            };
            let p = PreparedMessage::new("1", text, 0, "d");
            let s = v.score(&p.context()).unwrap().score;
            let e = stats.entry(label.to_string()).or_default();
            e.0 += s;
            e.1 += 1;
            if s > 0.5 {
                e.2 += 1;
            }
        }
        for (l, (sum, n, hi)) in stats {
            println!(
                "{path} {l}: mean {:.3} n {n} >0.5 {:.3}",
                sum / n as f32,
                hi as f32 / n as f32
            );
        }
    }
}
