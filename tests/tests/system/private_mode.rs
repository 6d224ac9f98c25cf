//! Private mode end to end: the edge's cloud link sends a ciphertext made on the phone side to
//! the real server on loopback; the phone decrypts exactly the plaintext integer scores, before
//! and after a server restart, and a tampered query is INVALID_ARGUMENT.

use smsguard_core::normalize;
use smsguard_edge::cloud_link::{CloudClient, CloudLinkError};
use smsguard_private::params::PARAMETER_SET;
use smsguard_private::{PrivateClient, PrivateModel};
use smsguard_system_tests::{cloud_config, samples, TestCloud, GENEROUS_DEADLINE};
use tonic::Code;

fn served_model() -> PrivateModel {
    serde_json::from_str(include_str!("../../../cloud/models/private.json")).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Encrypts, asks the cloud, decrypts; checks exactness against the plaintext model.
fn assert_exact_round_trip(
    rt: &tokio::runtime::Runtime,
    link: &CloudClient,
    phone: &PrivateClient,
    model: &PrivateModel,
    text: &str,
) {
    let normalized = normalize(text).text;
    let query = phone.encrypt_text(&normalized).unwrap();
    let answer = rt
        .block_on(link.private_classify(PARAMETER_SET, query))
        .unwrap();
    let scores = phone.decrypt_scores(&answer.scores).unwrap();
    let features = model.shape.features(&normalized);
    assert_eq!(scores, model.plain_scores(&features).unwrap());
}

#[test]
fn the_edge_link_gets_exact_encrypted_scores_across_a_restart() {
    let mut cloud = TestCloud::start(|_| {}).unwrap();
    let link = CloudClient::new(&cloud_config(&cloud.url(), GENEROUS_DEADLINE)).unwrap();
    let rt = runtime();
    let model = served_model();
    let phone = PrivateClient::new(model.shape).unwrap();

    for i in 0..3 {
        assert_exact_round_trip(&rt, &link, &phone, &model, &samples::phishing(i));
        assert_exact_round_trip(&rt, &link, &phone, &model, &samples::ham(i));
    }
    cloud.restart().unwrap();
    let link = CloudClient::new(&cloud_config(&cloud.url(), GENEROUS_DEADLINE)).unwrap();
    assert_exact_round_trip(&rt, &link, &phone, &model, &samples::phishing(9));

    let mut tampered = phone.encrypt_text("hello").unwrap();
    tampered.truncate(tampered.len() - 7);
    match rt.block_on(link.private_classify(PARAMETER_SET, tampered)) {
        Err(CloudLinkError::Rejected { code, .. }) => assert_eq!(code, Code::InvalidArgument),
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
}
