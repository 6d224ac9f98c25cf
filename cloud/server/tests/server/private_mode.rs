//! `PrivateClassify` on a real server on loopback: the phone's decrypted scores equal the
//! plaintext integer scores of the served model; tampered, truncated, oversized and
//! wrong-parameter requests get INVALID_ARGUMENT or FAILED_PRECONDITION and the server goes on.

use std::sync::LazyLock;

use smsguard_core::normalize;
use smsguard_private::params::PARAMETER_SET;
use smsguard_private::{PrivateClient, PrivateHead, PrivateModel};
use smsguard_proto::v1;
use tonic::Code;

use crate::common::{self, client, run, TestServer};

static SERVER: LazyLock<TestServer> = LazyLock::new(|| run(common::start(|_| {})));

/// The model the server compiles in.
fn served_model() -> PrivateModel {
    serde_json::from_str(include_str!("../../../models/private.json")).unwrap()
}

fn published_head() -> PrivateHead {
    serde_json::from_str(include_str!("../../../models/private_head.json")).unwrap()
}

fn request(features: Vec<u8>) -> v1::PrivateClassifyRequest {
    v1::PrivateClassifyRequest {
        parameter_set: PARAMETER_SET.to_string(),
        features,
    }
}

/// One call to the shared server (started before the runtime is entered: a lazy start inside
/// `run` would nest runtimes).
fn private_classify(
    request: v1::PrivateClassifyRequest,
) -> Result<v1::PrivateClassifyResponse, tonic::Status> {
    let addr = SERVER.addr();
    run(async move {
        let mut client = client(addr).await;
        client
            .private_classify(request)
            .await
            .map(|r| r.into_inner())
    })
}

#[test]
fn decrypted_scores_equal_the_plaintext_scores_of_the_served_model() {
    let model = served_model();
    let phone = PrivateClient::new(model.shape).unwrap();
    for text in [
        "Your account is locked, verify now at http://bank-secure.example.com/login",
        "【快递】您的包裹地址有误，请点击链接重新填写",
        "See you at the station at 6, bring the tickets",
    ] {
        let normalized = normalize(text).text;
        let query = phone.encrypt_text(&normalized).unwrap();
        let answer = (private_classify(request(query))).unwrap();
        assert_eq!(answer.parameter_set, PARAMETER_SET);
        assert_eq!(answer.classes as usize, model.shape.classes);
        assert_eq!(answer.buckets as usize, model.shape.buckets);
        assert_eq!(answer.labels, model.labels);
        assert_eq!(answer.model_version.len(), 16);
        // The head published with the model: the committed one, fitted for this model.
        let head: PrivateHead = serde_json::from_str(&answer.fusion_head).unwrap();
        assert_eq!(head, published_head());
        assert_eq!(head.model_version, answer.model_version);
        let scores = phone.decrypt_scores(&answer.scores).unwrap();
        let features = model.shape.features(&normalized);
        assert_eq!(scores, model.plain_scores(&features).unwrap());
    }
}

#[test]
fn bad_ciphertexts_are_invalid_argument_and_the_server_keeps_answering() {
    let model = served_model();
    let phone = PrivateClient::new(model.shape).unwrap();
    let query = phone.encrypt_text("hello there").unwrap();
    let mut flipped_framing = query.clone();
    flipped_framing[0] ^= 0xff;
    for bad in [
        Vec::new(),
        query[..query.len() / 2].to_vec(),
        query[..query.len() - 1].to_vec(),
        b"not a ciphertext".to_vec(),
        flipped_framing,
        vec![0u8; 300 * 1024],
    ] {
        let status = (private_classify(request(bad))).unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }
    assert!((private_classify(request(query))).is_ok());
}

#[test]
fn another_parameter_set_is_failed_precondition() {
    let phone = PrivateClient::new(served_model().shape).unwrap();
    let mut asked = request(phone.encrypt_text("hello").unwrap());
    asked.parameter_set = "bfv-n8192-other".into();
    let status = (private_classify(asked)).unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
}
