//! The cloud link over TLS: the server's certificate is checked against the CA in the config.

use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use smsguard_edge::cloud_link::{CloudClient, CloudLinkError};
use smsguard_edge::engine::{EngineError, Source};
use smsguard_proto::v1;
use smsguard_server::TlsConfig;
use smsguard_system_tests::{
    cloud_config, engine_config, now_ms, open_engine, samples, HarnessError, TestCloud,
    GENEROUS_DEADLINE,
};

/// A CA and a `localhost` certificate it signed, written as PEM files into `dir`.
fn certificates(dir: &std::path::Path) -> (String, TlsConfig) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let mut server_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
    let tls = TlsConfig {
        cert_pem: dir.join("server.pem"),
        key_pem: dir.join("server.key"),
        client_ca_pem: None,
    };
    std::fs::write(&tls.cert_pem, server_cert.pem()).unwrap();
    std::fs::write(&tls.key_pem, server_key.serialize_pem()).unwrap();
    (ca_cert.pem(), tls)
}

fn tls_cloud(tls: TlsConfig) -> TestCloud {
    TestCloud::start(|config| {
        config.plaintext = false;
        config.tls = Some(tls);
        config.allow_anonymous = true;
    })
    .unwrap()
}

fn https_url(cloud: &TestCloud) -> String {
    format!("https://localhost:{}", cloud.addr().port())
}

#[test]
fn the_engine_gets_cloud_verdicts_over_tls_with_the_configured_ca() {
    let pki = tempfile::tempdir().unwrap();
    let (ca_pem, tls) = certificates(pki.path());
    let cloud = tls_cloud(tls);
    let mut link = cloud_config(&https_url(&cloud), GENEROUS_DEADLINE);
    link.ca_cert_pem = Some(ca_pem.into_bytes());
    let dir = tempfile::tempdir().unwrap();
    let engine = open_engine(dir.path(), engine_config(Some(link))).unwrap();
    let decision = engine.classify(&samples::sender(1000), &samples::ham(200), now_ms());
    assert_eq!(decision.source, Source::Cloud, "{decision:?}");
}

#[test]
fn a_server_signed_by_another_ca_is_not_trusted() {
    let pki = tempfile::tempdir().unwrap();
    let (_, tls) = certificates(pki.path());
    let other = tempfile::tempdir().unwrap();
    let (other_ca_pem, _) = certificates(other.path());
    let cloud = tls_cloud(tls);
    let mut link = cloud_config(&https_url(&cloud), GENEROUS_DEADLINE);
    link.ca_cert_pem = Some(other_ca_pem.into_bytes());
    let client = CloudClient::new(&link).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let refused = runtime
        .block_on(client.classify(v1::SmsMessage {
            sender: samples::sender(1001),
            body: samples::ham(201),
            received_at_ms: now_ms(),
            ..v1::SmsMessage::default()
        }))
        .unwrap_err();
    assert!(
        matches!(refused, CloudLinkError::Unavailable { .. }),
        "{refused:?}"
    );
}

#[test]
fn https_without_a_ca_is_a_configuration_error() {
    let link = cloud_config("https://localhost:1", GENEROUS_DEADLINE);
    assert!(matches!(
        CloudClient::new(&link),
        Err(CloudLinkError::Config(_))
    ));
    let dir = tempfile::tempdir().unwrap();
    let opened = open_engine(dir.path(), engine_config(Some(link)));
    assert!(matches!(
        opened,
        Err(HarnessError::Engine(EngineError::Config(_)))
    ));
}
