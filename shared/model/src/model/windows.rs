//! Where a long message is read: the model sees only the start of a text (`seq_len` character
//! ids for the char-CNN, the first `ngram.max_chars` characters for the n-gram branch), so a
//! lure after a screen of chat would go unread. A text longer than one window is scored in
//! several overlapping windows and judged by its worst (most spam-like) one.
//!
//! A window is the suffix of the normalised text from a start offset: the encoder and the
//! n-gram hasher each truncate it themselves, so the first window is exactly what a single
//! pass reads, and a text that fits in one window is scored exactly as before windows existed.
//! Starts step by the shorter of the two branches' reach, so every character of the text is
//! read by both branches in some window; the last window starts `step` characters before the
//! end. [`MAX_WINDOWS`] bounds the work: beyond it the windows are spread evenly over the text.

/// Most windows one message is scored in (one model batch). With the shipped model (char-CNN
/// 128 ids, n-grams 256 characters) 16 windows read every character with both branches up to
/// 2,048 normalised characters (a 13-part concatenated GSM SMS of 153 characters, 30 parts of
/// 67 UCS-2 characters) and with the n-gram branch up to 3,968; a longer text gets 16 evenly
/// spaced windows.
pub const MAX_WINDOWS: usize = 16;

/// How far each branch of a model reads into a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowPlan {
    /// Characters one window holds for the farther-reading branch.
    span: usize,
    /// Characters between window starts: the nearer-reading branch's reach.
    step: usize,
}

impl WindowPlan {
    /// The plan for a model reading `seq_len` char ids and `ngram_chars` n-gram characters.
    pub fn new(seq_len: usize, ngram_chars: usize) -> WindowPlan {
        WindowPlan {
            span: seq_len.max(ngram_chars).max(1),
            step: seq_len.min(ngram_chars).max(1),
        }
    }

    /// Byte offsets (on character boundaries) where the windows of `text` start, in order;
    /// `[0]` when the text fits in one window.
    pub fn starts(&self, text: &str) -> Vec<usize> {
        let boundaries: Vec<usize> = text.char_indices().map(|(at, _)| at).collect();
        let chars = boundaries.len();
        if chars <= self.span {
            return vec![0];
        }
        let last = chars - self.step;
        let stepped = last.div_ceil(self.step) + 1;
        let char_starts: Vec<usize> = if stepped <= MAX_WINDOWS {
            (0..last)
                .step_by(self.step)
                .chain(std::iter::once(last))
                .collect()
        } else {
            (0..MAX_WINDOWS)
                .map(|i| i * last / (MAX_WINDOWS - 1))
                .collect()
        };
        char_starts.into_iter().map(|c| boundaries[c]).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn char_starts(plan: WindowPlan, text: &str) -> Vec<usize> {
        plan.starts(text)
            .into_iter()
            .map(|at| text[..at].chars().count())
            .collect()
    }

    #[test]
    fn a_text_that_fits_is_one_window() {
        let plan = WindowPlan::new(128, 256);
        assert_eq!(plan.starts(""), vec![0]);
        assert_eq!(plan.starts(&"a".repeat(256)), vec![0]);
    }

    #[test]
    fn long_texts_step_by_the_shorter_reach_and_end_at_the_text() {
        let plan = WindowPlan::new(128, 256);
        assert_eq!(char_starts(plan, &"a".repeat(257)), vec![0, 128, 129]);
        assert_eq!(char_starts(plan, &"a".repeat(300)), vec![0, 128, 172]);
        assert_eq!(char_starts(plan, &"a".repeat(512)), vec![0, 128, 256, 384]);
        // Every character is within `step` of some start: both branches read it.
        let starts = char_starts(plan, &"a".repeat(2_048));
        assert_eq!(starts.len(), MAX_WINDOWS);
        assert!(starts.windows(2).all(|w| w[1] - w[0] <= 128));
        assert_eq!(*starts.last().unwrap(), 2_048 - 128);
    }

    #[test]
    fn huge_texts_get_evenly_spread_windows_up_to_the_cap() {
        let plan = WindowPlan::new(128, 256);
        let starts = char_starts(plan, &"a".repeat(100_000));
        assert_eq!(starts.len(), MAX_WINDOWS);
        assert_eq!((starts[0], starts[MAX_WINDOWS - 1]), (0, 100_000 - 128));
    }

    #[test]
    fn starts_fall_on_character_boundaries() {
        let plan = WindowPlan::new(4, 8);
        let text = "恭喜您中奖了请点击链接领取奖金逾期作废";
        for at in plan.starts(text) {
            assert!(text.is_char_boundary(at));
        }
        assert_eq!(char_starts(plan, text), vec![0, 4, 8, 12, 15]);
    }
}
