//! The BFV parameter set of private mode, chosen at 128-bit security by the
//! HomomorphicEncryption.org standard (Albrecht et al., "Homomorphic Encryption Security
//! Standard", 2018), Table 1, row n = 4096, security 128 bits (classical): log2 q <= 109 for a
//! secret drawn from the error distribution (σ ≈ 3.2; `fhe` samples the secret and the errors from
//! a centred binomial of variance 10, σ ≈ 3.16).
//!
//! * degree N = 4096;
//! * ciphertext moduli: two NTT-friendly primes of 46 and 62 bits (log2 q = 108 <= 109), generated
//!   deterministically by `fhe` as the largest primes = 1 mod 2N below 2^46 and 2^62; the answer
//!   is switched down to the 46-bit one, which shrinks it;
//! * plaintext modulus t = 1073741789 (the largest prime below 2^30): every score stays below t/2
//!   in absolute value (checked at compile time from the feature and weight bounds), so 12-bit
//!   weights fit (8-bit ones cost up to 3.8 points of dev accuracy against the float model).
//!
//! Noise: the answer at the 46-bit modulus has Δ = q0 / t ≈ 2^16; the plaintext product's noise
//! is divided by the dropped 62-bit prime, and the switch adds about sqrt(N)·σ ≈ 2^8, so
//! decryption (correct while noise < Δ/2) keeps a margin of about 2^7.

use std::sync::Arc;

use fhe::bfv::{BfvParameters, BfvParametersBuilder};

use crate::PrivateError;

/// Polynomial degree N.
pub const DEGREE: usize = 4096;
/// Bit sizes of the ciphertext moduli, the first one kept after modulus switching.
pub const MODULI_BITS: [usize; 2] = [46, 62];
/// Plaintext modulus t.
pub const PLAINTEXT_MODULUS: u64 = 1_073_741_789;
/// Identifier of this parameter set, sent with every query so that a server on other parameters
/// refuses it instead of computing garbage.
pub const PARAMETER_SET: &str = "bfv-n4096-q46+62-t1073741789-v1";

/// Largest feature value (a quantised n-gram weight).
pub const MAX_FEATURE: i64 = 15;
/// Largest absolute integer weight.
pub const MAX_WEIGHT: i64 = 4095;

/// Builds the parameter set (deterministic: same moduli every time).
pub fn bfv_parameters() -> Result<Arc<BfvParameters>, PrivateError> {
    Ok(BfvParametersBuilder::new()
        .set_degree(DEGREE)
        .set_moduli_sizes(&MODULI_BITS)
        .set_plaintext_modulus(PLAINTEXT_MODULUS)
        .build_arc()?)
}

/// Largest absolute score a model with `buckets` buckets can produce: every bucket at
/// [`MAX_FEATURE`] times a weight of [`MAX_WEIGHT`].
pub const fn score_bound(buckets: usize) -> i64 {
    buckets as i64 * MAX_FEATURE * MAX_WEIGHT
}

// The widest model (one class over all N coefficients) cannot wrap modulo t, so a decrypted score
// centred in (-t/2, t/2] is the exact integer.
const _: () = assert!(2 * score_bound(DEGREE) < PLAINTEXT_MODULUS as i64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moduli_fit_the_security_table_row() {
        let params = bfv_parameters().unwrap();
        assert_eq!(params.degree(), DEGREE);
        let total_bits: usize = params.moduli_sizes().iter().sum();
        assert!(
            total_bits <= 109,
            "log2 q = {total_bits} exceeds the n = 4096 row"
        );
        assert_eq!(params.moduli_sizes(), MODULI_BITS);
        assert_eq!(params.plaintext(), PLAINTEXT_MODULUS);
    }

    #[test]
    fn plaintext_modulus_is_prime() {
        let t = PLAINTEXT_MODULUS;
        assert!((2..).take_while(|d| d * d <= t).all(|d| t % d != 0));
    }
}
