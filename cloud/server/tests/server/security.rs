//! API keys, rate limits and TLS (with and without required client certificates).

use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use smsguard_proto::v1::sms_guard_client::SmsGuardClient;
use smsguard_server::{ApiKeyConfig, TlsConfig};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic::Code;

use crate::common::{self, classify_request, run};

fn with_key(key: &str) -> tonic::Request<smsguard_proto::v1::ClassifyRequest> {
    let mut request = tonic::Request::new(classify_request("are you coming tonight?"));
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

#[test]
fn a_wrong_or_missing_api_key_is_refused_and_a_key_is_rate_limited() {
    run(async {
        let server = common::start(|config| {
            config.api_keys = vec![ApiKeyConfig::from_key("fleet-a", "right-key", 0.001, 2)];
        })
        .await;
        let mut client = common::client(server.addr()).await;
        let wrong = client.classify(with_key("wrong-key")).await.unwrap_err();
        assert_eq!(wrong.code(), Code::Unauthenticated);
        let missing = client
            .classify(classify_request("no key at all"))
            .await
            .unwrap_err();
        assert_eq!(missing.code(), Code::Unauthenticated);
        client.classify(with_key("right-key")).await.unwrap();
        client.classify(with_key("right-key")).await.unwrap();
        let limited = client.classify(with_key("right-key")).await.unwrap_err();
        assert_eq!(limited.code(), Code::ResourceExhausted);
        assert!(limited.message().contains("fleet-a"));
        server.server.shutdown().await.unwrap();
    });
}

fn keyed_report(key: &str, device: &str) -> tonic::Request<smsguard_proto::v1::ReportRequest> {
    let text = "Your account is locked, confirm your PIN at bank-unlock.example within 24 hours";
    let normalized = smsguard_core::normalize(text);
    let fingerprint = smsguard_core::MinHasher::new().fingerprint(&normalized.text);
    let mut request = tonic::Request::new(smsguard_proto::v1::ReportRequest {
        feedback: smsguard_proto::v1::Feedback::Spam as i32,
        fingerprint: fingerprint.to_hex(),
        minhash: fingerprint.minhash.to_vec(),
        device_id: device.into(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

#[test]
fn report_votes_are_bound_to_the_authenticated_key() {
    run(async {
        let server = common::start(|config| {
            config.api_keys = vec![
                ApiKeyConfig::from_key("phone-a", "secret-a", 100.0, 100),
                ApiKeyConfig::from_key("phone-b", "secret-b", 100.0, 100),
            ];
        })
        .await;
        let mut client = common::client(server.addr()).await;
        let count = |key: &'static str, device: &'static str| {
            let mut client = client.clone();
            async move {
                let answer = client.report(keyed_report(key, device)).await.unwrap();
                answer.into_inner().report_count
            }
        };
        assert_eq!(count("secret-a", "device-1").await, 1);
        // The same key claiming the same device again: still one vote.
        assert_eq!(count("secret-a", "device-1").await, 1);
        // Another key cannot reuse (or overwrite) phone-a's vote by naming the same device id.
        assert_eq!(count("secret-b", "device-1").await, 2);
        client.classify(with_key("secret-a")).await.unwrap();
        server.server.shutdown().await.unwrap();
    });
}

/// A test CA, a `localhost` server certificate and a client certificate, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let mut server_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();

    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(vec!["device-1".to_owned()]).unwrap();
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.path().join("server.pem"), server_cert.pem()).unwrap();
    std::fs::write(dir.path().join("server.key"), server_key.serialize_pem()).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        client_cert_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
        dir,
    }
}

fn tls_settings(pki: &Pki, require_client_certs: bool) -> TlsConfig {
    TlsConfig {
        cert_pem: pki.dir.path().join("server.pem"),
        key_pem: pki.dir.path().join("server.key"),
        client_ca_pem: require_client_certs.then(|| pki.dir.path().join("ca.pem")),
    }
}

async fn tls_client(
    addr: std::net::SocketAddr,
    pki: &Pki,
    with_client_cert: bool,
) -> Result<SmsGuardClient<Channel>, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    if with_client_cert {
        tls = tls.identity(Identity::from_pem(
            &pki.client_cert_pem,
            &pki.client_key_pem,
        ));
    }
    let channel = Channel::from_shared(format!("https://localhost:{}", addr.port()))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await?;
    Ok(SmsGuardClient::new(channel))
}

#[test]
fn tls_serves_clients_that_trust_the_test_ca() {
    let pki = pki();
    run(async {
        let server = common::start(|config| {
            config.plaintext = false;
            config.tls = Some(tls_settings(&pki, false));
            config.api_keys = vec![ApiKeyConfig::from_key("fleet", "k", 100.0, 100)];
        })
        .await;
        let mut client = tls_client(server.addr(), &pki, false).await.unwrap();
        let verdict = client.classify(with_key("k")).await.unwrap().into_inner();
        assert!(verdict.verdict.is_some());
        // A plaintext client cannot talk to the TLS port.
        let plain = SmsGuardClient::connect(format!("http://{}", server.addr())).await;
        let refused = match plain {
            Err(_) => true,
            Ok(mut plain) => plain.classify(with_key("k")).await.is_err(),
        };
        assert!(refused, "plaintext must not reach the TLS port");
        server.server.shutdown().await.unwrap();
    });
}

#[test]
fn required_client_certificates_refuse_clients_without_one() {
    let pki = pki();
    run(async {
        let server = common::start(|config| {
            config.plaintext = false;
            config.allow_anonymous = true;
            config.tls = Some(tls_settings(&pki, true));
        })
        .await;
        let refused = match tls_client(server.addr(), &pki, false).await {
            Err(_) => true,
            Ok(mut client) => client.classify(classify_request("hi")).await.is_err(),
        };
        assert!(refused, "a client without a certificate must be refused");
        let mut client = tls_client(server.addr(), &pki, true).await.unwrap();
        let verdict = client.classify(classify_request("hi there")).await.unwrap();
        assert!(verdict.into_inner().verdict.is_some());
        server.server.shutdown().await.unwrap();
    });
}
