//! The private-mode calls of [`CloudClient`]: none sends text, sender, fingerprint or device id.

use smsguard_proto::v1::{
    PrivateClassifyRequest, PrivateClassifyResponse, PrivateParamsRequest, PrivateParamsResponse,
    PrivateSimilarityRequest, PrivateSimilarityResponse,
};

use super::{with_deadline, CloudClient, CloudLinkError};

impl CloudClient {
    /// Private mode: sends a BFV ciphertext of a message's features (made by
    /// `smsguard_private::PrivateClient`; no text, sender, fingerprint or device id goes out) and
    /// returns the encrypted class scores, within the interactive deadline.
    pub async fn private_classify(
        &self,
        parameter_set: &str,
        features: Vec<u8>,
    ) -> Result<PrivateClassifyResponse, CloudLinkError> {
        let body = PrivateClassifyRequest {
            parameter_set: parameter_set.to_owned(),
            features,
        };
        let deadline = self.inner.deadline;
        let request = self.request(body, deadline);
        let mut client = self.grpc();
        with_deadline(deadline, client.private_classify(request)).await
    }

    /// Private mode's similarity lookup: sends only the top `prefix_bits` bits of each of a
    /// message's LSH band keys (`smsguard_private::similarity::band_prefixes`), no device id (as
    /// `private_classify`: private mode sends none), and returns every stored entry of the (band, prefix) buckets holding at least k entries,
    /// within the interactive deadline. The phone matches its full keys locally.
    pub async fn private_similarity(
        &self,
        prefix_bits: u32,
        prefixes: Vec<u32>,
    ) -> Result<PrivateSimilarityResponse, CloudLinkError> {
        let body = PrivateSimilarityRequest {
            prefix_bits,
            prefixes,
            device_id: String::new(),
        };
        let deadline = self.inner.deadline;
        let request = self.request(body, deadline);
        let mut client = self.grpc();
        with_deadline(deadline, client.private_similarity(request)).await
    }

    /// Private mode's parameters and model (`PrivateParams`: an empty request), fetched once
    /// when private mode starts, within the interactive deadline.
    pub async fn private_params(&self) -> Result<PrivateParamsResponse, CloudLinkError> {
        let deadline = self.inner.deadline;
        let request = self.request(PrivateParamsRequest {}, deadline);
        let mut client = self.grpc();
        with_deadline(deadline, client.private_params(request)).await
    }
}
