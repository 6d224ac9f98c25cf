//! Fits the calibration the cloud's scorers and fusion apply ([`smsguard_scoring::calibration`]):
//! Platt's sigmoid over margins of messages the calibrated model never trained on.

use smsguard_scoring::calibration::Platt;

/// Fits `a`, `b` by Newton's method on the log-loss, with Platt's smoothed targets
/// (`(n₊ + 1) / (n₊ + 2)` and `1 / (n₋ + 2)`) so a separable set does not send `a` to
/// infinity. `margins` must come from messages the model did not train on.
pub fn fit_platt(margins: &[f32], positive: &[bool]) -> Platt {
    let n_pos = positive.iter().filter(|&&p| p).count() as f64;
    let n_neg = positive.len() as f64 - n_pos;
    let (hi, lo) = ((n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0));
    let (mut a, mut b) = (1.0f64, 0.0f64);
    for _ in 0..100 {
        let (mut g_a, mut g_b, mut h_aa, mut h_ab, mut h_bb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (&m, &pos) in margins.iter().zip(positive) {
            let m = f64::from(m);
            let p = 1.0 / (1.0 + (-(a * m + b)).exp());
            let r = p - if pos { hi } else { lo };
            let c = (p * (1.0 - p)).max(1e-12);
            (g_a, g_b) = (g_a + r * m, g_b + r);
            (h_aa, h_ab, h_bb) = (h_aa + c * m * m, h_ab + c * m, h_bb + c);
        }
        h_aa += 1e-9;
        h_bb += 1e-9;
        let det = h_aa * h_bb - h_ab * h_ab;
        if det.abs() < 1e-18 {
            break;
        }
        let (d_a, d_b) = (
            (h_bb * g_a - h_ab * g_b) / det,
            (h_aa * g_b - h_ab * g_a) / det,
        );
        (a, b) = (a - d_a, b - d_b);
        if d_a.abs().max(d_b.abs()) < 1e-9 {
            break;
        }
    }
    // A slope at or under 0 would reverse the ranking; such data carries no signal.
    Platt {
        a: (a as f32).max(1e-3),
        b: b as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platt_orders_and_calibrates_margins() {
        let margins = [-2.0, -1.5, -1.0, -0.2, 0.3, 0.1, 1.0, 1.4, 2.0, -0.1];
        let positive = [
            false, false, false, false, true, false, true, true, true, true,
        ];
        let platt = fit_platt(&margins, &positive);
        assert!(platt.a > 0.0, "{platt:?}");
        assert!(platt.probability(2.0) > 0.8 && platt.probability(-2.0) < 0.2);
    }
}
