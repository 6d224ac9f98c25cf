//! `PrivateParams` on a real server on loopback: it publishes the parameter set, shape, model
//! version, labels and fusion head that `PrivateClassify` answers with, and the similarity
//! lookup's prefix lengths (12 bits at least on Redis); it is behind the API key and rate limit
//! of `Classify`.

use smsguard_private::params::{self, PARAMETER_SET};
use smsguard_private::{PrivateClient, PrivateModel};
use smsguard_proto::v1;
use smsguard_server::ApiKeyConfig;
use smsguard_signing::VerifyingKey;
use tonic::Code;

use crate::common::{self, client, run, with_bearer};
use crate::test_redis::TestRedis;

fn served_model() -> PrivateModel {
    serde_json::from_str(include_str!("../../../models/private.json")).unwrap()
}

#[test]
fn the_params_are_those_private_classify_answers_with() {
    run(async {
        let server = common::start(|config| config.state = None).await;
        let mut client = client(server.addr()).await;
        let params = client
            .private_params(v1::PrivateParamsRequest {})
            .await
            .unwrap()
            .into_inner();
        let model = served_model();
        assert_eq!(params.parameter_set, PARAMETER_SET);
        assert_eq!(params.polynomial_degree as usize, params::DEGREE);
        assert_eq!(params.ciphertext_moduli_bits, [46, 62]);
        assert_eq!(params.plaintext_modulus, params::PLAINTEXT_MODULUS);
        assert_eq!(params.classes as usize, model.shape.classes);
        assert_eq!(params.buckets as usize, model.shape.buckets);
        assert_eq!(params.max_ngram as usize, model.shape.max_n);
        assert_eq!(params.max_chars as usize, model.shape.max_chars);
        assert_eq!(params.max_feature, 15);
        assert_eq!(params.labels, model.labels);
        // An empty embedded memory: the shortest prefix is suggested and served.
        assert_eq!(
            (params.suggested_prefix_bits, params.min_prefix_bits),
            (4, 4)
        );
        assert_eq!(
            (params.min_bucket_entries, params.max_bucket_entries),
            (8, 128)
        );

        let phone = PrivateClient::new(model.shape).unwrap();
        let answer = client
            .private_classify(v1::PrivateClassifyRequest {
                parameter_set: params.parameter_set.clone(),
                features: phone.encrypt_text("see you at six").unwrap(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.model_version, params.model_version);
        assert_eq!(
            answer.fusion_head, params.fusion_head,
            "the answers keep the head"
        );
        // Both carry the head signed by the key that signs the edge model package.
        let model_key = VerifyingKey::from_hex(&server.server.model_public_key).unwrap();
        for (head, signature, key_id) in [
            (
                &params.fusion_head,
                &params.fusion_head_signature,
                &params.key_id,
            ),
            (
                &answer.fusion_head,
                &answer.fusion_head_signature,
                &answer.key_id,
            ),
        ] {
            assert_eq!(*key_id, model_key.key_id());
            model_key
                .verify_private_head(head.as_bytes(), signature)
                .expect("the head verifies against the model key");
        }
        let size = prost::Message::encoded_len(&params);
        println!("PrivateParams answer: {size} bytes");
        assert!(size < 2048);
    });
}

#[test]
fn on_redis_the_suggested_prefix_is_one_it_serves() {
    let redis = TestRedis::start();
    let url = redis.url(0);
    run(async move {
        let server = common::start(|config| config.state = Some(url)).await;
        let mut client = client(server.addr()).await;
        let params = client
            .private_params(v1::PrivateParamsRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            (params.suggested_prefix_bits, params.min_prefix_bits),
            (12, 12)
        );
    });
}

#[test]
fn the_params_need_the_api_key_and_share_its_rate_limit() {
    run(async {
        let server = common::start(|config| {
            config.api_keys = vec![ApiKeyConfig::from_key("fleet-p", "params-key", 0.001, 2)];
        })
        .await;
        let mut client = client(server.addr()).await;
        let missing = client
            .private_params(v1::PrivateParamsRequest {})
            .await
            .unwrap_err();
        assert_eq!(missing.code(), Code::Unauthenticated);
        let keyed = || with_bearer("params-key", v1::PrivateParamsRequest {});
        client.private_params(keyed()).await.unwrap();
        let classify = with_bearer("params-key", common::classify_request("see you at six"));
        client.classify(classify).await.unwrap();
        let limited = client.private_params(keyed()).await.unwrap_err();
        assert_eq!(limited.code(), Code::ResourceExhausted, "{limited:?}");
        assert!(limited.message().contains("fleet-p"));
    });
}
