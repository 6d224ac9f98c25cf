//! What the cloud publishes for private mode (`PrivateParams`): fetched once when private mode
//! starts (the engine opens), and again after a `PrivateClassify` answered FAILED_PRECONDITION
//! (the cloud moved to another parameter set). When the published BFV parameters or feature
//! shape are not the ones this phone encrypts for, private mode is refused: no private call goes
//! out, the local verdict stands (degraded) and the reason says why. A cloud from before the call
//! (UNIMPLEMENTED) is used as before: every answer names its parameter set and is checked.

use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use smsguard_private::params::{
    DEGREE, MAX_FEATURE, MODULI_BITS, PARAMETER_SET, PLAINTEXT_MODULUS,
};
use smsguard_private::PrivateShape;
use smsguard_proto::v1::PrivateParamsResponse;
use tonic::Code;

use super::link::{Pending, Remote};
use super::private_similarity::PrefixBits;
use crate::cloud_link::CloudLinkError;

#[derive(Debug)]
enum State {
    /// To fetch with the next private message.
    Unknown,
    Fetching(Pending<PrivateParamsResponse>),
    /// Published and supported.
    Supported,
    /// The cloud publishes none (a server from before `PrivateParams`).
    Unpublished,
    /// Published and not supported: private mode is off, for this reason.
    Unsupported(String),
}

/// The published parameters' state, shared by every classification.
#[derive(Debug)]
pub(crate) struct PublishedParams(Mutex<State>);

impl PublishedParams {
    /// Starts the fetch (private mode's start).
    pub(crate) fn fetch(remote: &Remote) -> Self {
        PublishedParams(Mutex::new(State::Fetching(
            remote.start(remote.link.private_params()),
        )))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether private mode may run now: `Err(reason)` when the cloud publishes parameters this
    /// phone does not support. A fetch in flight is waited for until `deadline`; one that fails
    /// is asked again with the next message (the private calls then decide this one). A
    /// supported answer's similarity prefix suggestion is adopted.
    pub(crate) fn check(
        &self,
        remote: &Remote,
        shape: &PrivateShape,
        prefix_bits: &PrefixBits,
        deadline: Instant,
    ) -> Result<(), String> {
        let mut state = self.state();
        if matches!(*state, State::Unknown) {
            *state = State::Fetching(remote.start(remote.link.private_params()));
        }
        if let State::Fetching(_) = &*state {
            let State::Fetching(pending) = std::mem::replace(&mut *state, State::Unknown) else {
                unreachable!("matched just above");
            };
            *state = match pending.wait_until(deadline) {
                Ok(params) => match supported(&params, shape) {
                    Ok(()) => {
                        prefix_bits.adopt(params.suggested_prefix_bits);
                        State::Supported
                    }
                    Err(reason) => State::Unsupported(reason),
                },
                Err(CloudLinkError::Rejected {
                    code: Code::Unimplemented,
                    ..
                }) => State::Unpublished,
                Err(_) => State::Unknown,
            };
        }
        match &*state {
            State::Unsupported(reason) => Err(reason.clone()),
            _ => Ok(()),
        }
    }

    /// A private answer said FAILED_PRECONDITION (another parameter set): fetch again.
    pub(crate) fn note_failure(&self, error: &CloudLinkError) {
        if let CloudLinkError::Rejected {
            code: Code::FailedPrecondition,
            ..
        } = error
        {
            *self.state() = State::Unknown;
        }
    }
}

/// `Err(reason)` unless `params` name this phone's BFV parameter set and feature shape.
pub(crate) fn supported(
    params: &PrivateParamsResponse,
    shape: &PrivateShape,
) -> Result<(), String> {
    let moduli: Vec<u32> = MODULI_BITS.iter().map(|&bits| bits as u32).collect();
    if params.parameter_set != PARAMETER_SET
        || params.polynomial_degree as usize != DEGREE
        || params.ciphertext_moduli_bits != moduli
        || params.plaintext_modulus != PLAINTEXT_MODULUS
    {
        let asked: String = params.parameter_set.chars().take(64).collect();
        return Err(format!(
            "the cloud serves BFV parameter set `{asked}` (N = {}, t = {}); this phone supports \
             only `{PARAMETER_SET}`",
            params.polynomial_degree, params.plaintext_modulus
        ));
    }
    let theirs = (
        params.classes as usize,
        params.buckets as usize,
        params.max_ngram as usize,
        params.max_chars as usize,
        i64::from(params.max_feature),
    );
    let ours = (
        shape.classes,
        shape.buckets,
        shape.max_n,
        shape.max_chars,
        MAX_FEATURE,
    );
    if theirs != ours {
        return Err(format!(
            "the cloud's private model reads {} classes x {} buckets of 1..{}-grams over {} \
             characters (features 0..={}); this phone makes {} x {} of 1..{}-grams over {} \
             (0..={})",
            theirs.0,
            theirs.1,
            theirs.2,
            theirs.3,
            theirs.4,
            ours.0,
            ours.1,
            ours.2,
            ours.3,
            ours.4
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(shape: &PrivateShape) -> PrivateParamsResponse {
        PrivateParamsResponse {
            parameter_set: PARAMETER_SET.into(),
            polynomial_degree: DEGREE as u32,
            ciphertext_moduli_bits: MODULI_BITS.iter().map(|&b| b as u32).collect(),
            plaintext_modulus: PLAINTEXT_MODULUS,
            classes: shape.classes as u32,
            buckets: shape.buckets as u32,
            max_ngram: shape.max_n as u32,
            max_chars: shape.max_chars as u32,
            max_feature: MAX_FEATURE as u32,
            ..Default::default()
        }
    }

    #[test]
    fn only_this_phones_parameters_and_shape_are_supported() {
        let shape = PrivateShape::for_classes(5);
        assert_eq!(supported(&published(&shape), &shape), Ok(()));
        let mut other = published(&shape);
        other.parameter_set = "bfv-n8192-other".into();
        let reason = supported(&other, &shape).unwrap_err();
        assert!(reason.contains("bfv-n8192-other") && reason.contains(PARAMETER_SET));
        let mut degree = published(&shape);
        degree.polynomial_degree = 8192;
        assert!(supported(&degree, &shape).is_err(), "same id, other N");
        let mut wider = published(&shape);
        wider.buckets += 1;
        assert!(supported(&wider, &shape).unwrap_err().contains("buckets"));
        let mut grams = published(&shape);
        grams.max_ngram = 5;
        assert!(supported(&grams, &shape).is_err());
    }
}
