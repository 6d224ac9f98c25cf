//! The edge char-CNN in candle, with exactly the tensors of [`crate::config`].
//!
//! Internally activations stay in `[N, L, D]` layout: the depthwise convolution becomes k shifted
//! slices of the zero-padded sequence scaled per channel, and the pointwise convolution one
//! `[N*L, D] x [D, F]` matrix product. This is the same arithmetic as `Conv1d(groups = D,
//! pad = k/2)` followed by a `1x1` conv (cross-correlation, zero padding), but much faster on CPU
//! than candle's grouped conv, which loops over groups.

use candle_core::{DType, Device, Result, Tensor, Var, D};

use crate::config::{ArchConfig, ConvKind, HeadKind};

/// A named tensor as exchanged with the ONNX exporter: name, shape, row-major values.
pub type NamedWeight = (String, Vec<usize>, Vec<f32>);

/// Small deterministic RNG (SplitMix64) so that initialisation and shuffling depend only on the
/// seed, never on candle's global device RNG.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform integer in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Fisher-Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }

    /// Standard normal via Box-Muller.
    pub fn normal(&mut self) -> f64 {
        let u1 = self.next_f64().max(f64::MIN_POSITIVE);
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// One convolution branch of width `kernel`.
#[derive(Debug)]
struct Branch {
    kernel: usize,
    conv: BranchConv,
}

/// The variables of a branch, by [`ConvKind`].
#[derive(Debug)]
enum BranchConv {
    Separable {
        dw_weight: Var,
        dw_bias: Var,
        pw_weight: Var,
        pw_bias: Var,
    },
    Full {
        weight: Var,
        bias: Var,
    },
}

/// The trainable char-CNN.
#[derive(Debug)]
pub struct CharCnn {
    cfg: ArchConfig,
    embedding: Var,
    branches: Vec<Branch>,
    head_weight: Var,
    head_bias: Var,
    /// `[G]`: the linear n-gram branch's weight per bucket.
    ngram_weight: Var,
}

/// The inputs of one batch: char ids `[N, L]` (u32 or i64), n-gram bucket ids `[N, K]` (u32 or
/// i64) and their weights `[N, K]` (f32; 0 on padding).
#[derive(Debug)]
pub struct BatchInput {
    pub ids: Tensor,
    pub ngram_ids: Tensor,
    pub ngram_weights: Tensor,
}

impl CharCnn {
    /// Fresh model; initial weights are a pure function of `cfg` and `seed`.
    pub fn new(cfg: &ArchConfig, seed: u64) -> Result<Self> {
        let mut rng = SplitMix64::new(seed);
        let weights = init_weights(cfg, &mut rng);
        Self::from_weights(cfg, &weights)
    }

    /// Builds the model from named weights (e.g. the output of [`CharCnn::named_weights`]).
    pub fn from_weights(cfg: &ArchConfig, weights: &[NamedWeight]) -> Result<Self> {
        let expected = expected_shapes(cfg);
        let var = |name: &str| -> Result<Var> {
            let (_, shape, values) = weights
                .iter()
                .find(|(n, _, _)| n == name)
                .ok_or_else(|| candle_core::Error::Msg(format!("missing weight {name}")))?;
            let want = &expected
                .iter()
                .find(|(n, _)| n == name)
                .ok_or_else(|| candle_core::Error::Msg(format!("unexpected weight {name}")))?
                .1;
            if shape != want {
                return Err(candle_core::Error::Msg(format!(
                    "weight {name} has shape {shape:?}, expected {want:?}"
                )));
            }
            Var::from_tensor(&Tensor::from_slice(values, shape.as_slice(), &Device::Cpu)?)
        };
        let branches = cfg
            .kernel_widths
            .iter()
            .enumerate()
            .map(|(i, &kernel)| {
                let conv = match cfg.conv {
                    ConvKind::Separable => BranchConv::Separable {
                        dw_weight: var(&format!("convs.{i}.dw.weight"))?,
                        dw_bias: var(&format!("convs.{i}.dw.bias"))?,
                        pw_weight: var(&format!("convs.{i}.pw.weight"))?,
                        pw_bias: var(&format!("convs.{i}.pw.bias"))?,
                    },
                    ConvKind::Full => BranchConv::Full {
                        weight: var(&format!("convs.{i}.conv.weight"))?,
                        bias: var(&format!("convs.{i}.conv.bias"))?,
                    },
                };
                Ok(Branch { kernel, conv })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            cfg: cfg.clone(),
            embedding: var("embedding.weight")?,
            branches,
            head_weight: var("head.weight")?,
            head_bias: var("head.bias")?,
            ngram_weight: var("ngram.weight")?,
        })
    }

    pub fn config(&self) -> &ArchConfig {
        &self.cfg
    }

    /// Logits `[N, C]`: the CNN's plus the n-gram evidence on every label but ham.
    pub fn forward(&self, input: &BatchInput) -> Result<Tensor> {
        let cnn = self.cnn_logits(&input.ids)?;
        let (n, k) = input.ngram_ids.dims2()?;
        let buckets = input.ngram_ids.to_dtype(DType::U32)?.flatten_all()?;
        let evidence = self
            .ngram_weight
            .index_select(&buckets, 0)?
            .reshape((n, k))?
            .mul(&input.ngram_weights)?
            .sum_keepdim(1)?;
        let labels = self.cfg.num_labels();
        let spam_mask: Vec<f32> = (0..labels)
            .map(|c| if c == 0 { 0.0 } else { 1.0 })
            .collect();
        let spam_mask = Tensor::from_vec(spam_mask, (1, labels), &Device::Cpu)?;
        cnn + evidence.broadcast_mul(&spam_mask)?
    }

    /// Logits `[N, C]` of the CNN part alone for ids `[N, L]` (u32 or i64).
    fn cnn_logits(&self, ids: &Tensor) -> Result<Tensor> {
        let (n, l) = ids.dims2()?;
        let ids = ids.to_dtype(DType::U32)?.flatten_all()?;
        let d = self.cfg.embed_dim;
        let x = self.embedding.index_select(&ids, 0)?.reshape((n, l, d))?;
        let per_branch = self
            .branches
            .iter()
            .map(|b| {
                let activations = b.forward(&x)?;
                match self.cfg.head {
                    HeadKind::Pooled => activations.max(1),
                    // Channel-major like the ONNX graph: [N, L, F] -> [N, F, L] -> [N, F*L].
                    HeadKind::Dense => activations.transpose(1, 2)?.flatten_from(1),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let features = Tensor::cat(&per_branch, 1)?;
        features
            .matmul(&self.head_weight.t()?)?
            .broadcast_add(&self.head_bias)
    }

    /// The same model with the n-gram branch replaced by a fitted one: `weights` per bucket and
    /// `bias` added to the head bias of every label but ham (see [`crate::ngram_fit`]).
    pub fn with_ngram_branch(&self, weights: &[f32], bias: f32) -> Result<Self> {
        let mut named = self.named_weights()?;
        for (name, shape, values) in &mut named {
            if name == "ngram.weight" {
                if values.len() != weights.len() {
                    return Err(candle_core::Error::Msg(format!(
                        "n-gram branch has {} weights, expected {shape:?}",
                        weights.len()
                    )));
                }
                values.copy_from_slice(weights);
            } else if name == "head.bias" {
                values.iter_mut().skip(1).for_each(|b| *b += bias);
            }
        }
        Self::from_weights(&self.cfg, &named)
    }

    /// The variables of the CNN part (everything but the n-gram branch).
    pub fn cnn_vars(&self) -> Vec<Var> {
        let mut vars = self.vars();
        vars.pop();
        vars
    }

    /// All trainable variables, for the optimiser (the n-gram branch last).
    pub fn vars(&self) -> Vec<Var> {
        let mut vars = vec![self.embedding.clone()];
        for b in &self.branches {
            match &b.conv {
                BranchConv::Separable {
                    dw_weight,
                    dw_bias,
                    pw_weight,
                    pw_bias,
                } => vars.extend([
                    dw_weight.clone(),
                    dw_bias.clone(),
                    pw_weight.clone(),
                    pw_bias.clone(),
                ]),
                BranchConv::Full { weight, bias } => vars.extend([weight.clone(), bias.clone()]),
            }
        }
        vars.extend([
            self.head_weight.clone(),
            self.head_bias.clone(),
            self.ngram_weight.clone(),
        ]);
        vars
    }

    /// Every weight with its contract name and shape, in a fixed order.
    pub fn named_weights(&self) -> Result<Vec<NamedWeight>> {
        let names = expected_shapes(&self.cfg);
        names
            .into_iter()
            .zip(self.vars())
            .map(|((name, shape), var)| {
                let values = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
                Ok((name, shape, values))
            })
            .collect()
    }

    /// Number of scalar parameters.
    pub fn parameter_count(&self) -> usize {
        expected_shapes(&self.cfg)
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum()
    }
}

impl Branch {
    /// `[N, L, D]` -> `[N, L, F]`: the branch's convolution and ReLU (pooling is the head's).
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (n, l, d) = x.dims3()?;
        let pad = self.kernel / 2;
        let padded = x.pad_with_zeros(1, pad, pad)?;
        let (out, bias) = match &self.conv {
            BranchConv::Separable {
                dw_weight,
                dw_bias,
                pw_weight,
                pw_bias,
            } => {
                // dw_weight [D, 1, k] -> [k, D]: row j scales the slice shifted by j.
                let taps = dw_weight.reshape((d, self.kernel))?.t()?;
                let mut depthwise = dw_bias.reshape((1, 1, d))?.broadcast_as((n, l, d))?;
                for j in 0..self.kernel {
                    let tap = taps.narrow(0, j, 1)?.reshape((1, 1, d))?;
                    depthwise = (depthwise + padded.narrow(1, j, l)?.broadcast_mul(&tap)?)?;
                }
                let f = pw_bias.dims1()?;
                let pw = pw_weight.reshape((f, d))?;
                (depthwise.reshape((n * l, d))?.matmul(&pw.t()?)?, pw_bias)
            }
            BranchConv::Full { weight, bias } => {
                // im2col: the k shifted slices side by side, [N*L, k*D] (index j*D + c), against
                // the weight [F, D, k] reordered to [F, k*D]: one matrix product per branch.
                let slices = (0..self.kernel)
                    .map(|j| padded.narrow(1, j, l))
                    .collect::<Result<Vec<_>>>()?;
                let columns = Tensor::cat(&slices, 2)?.reshape((n * l, self.kernel * d))?;
                let f = bias.dims1()?;
                let w = weight
                    .permute((0, 2, 1))?
                    .contiguous()?
                    .reshape((f, self.kernel * d))?;
                (columns.matmul(&w.t()?)?, bias)
            }
        };
        let f = bias.dims1()?;
        out.broadcast_add(bias)?.relu()?.reshape((n, l, f))
    }
}

/// Names and shapes of every tensor, in the order of [`CharCnn::vars`].
pub fn expected_shapes(cfg: &ArchConfig) -> Vec<(String, Vec<usize>)> {
    let (d, f) = (cfg.embed_dim, cfg.filters);
    let mut shapes = vec![("embedding.weight".to_string(), vec![cfg.vocab_size, d])];
    for (i, &k) in cfg.kernel_widths.iter().enumerate() {
        match cfg.conv {
            ConvKind::Separable => {
                shapes.push((format!("convs.{i}.dw.weight"), vec![d, 1, k]));
                shapes.push((format!("convs.{i}.dw.bias"), vec![d]));
                shapes.push((format!("convs.{i}.pw.weight"), vec![f, d, 1]));
                shapes.push((format!("convs.{i}.pw.bias"), vec![f]));
            }
            ConvKind::Full => {
                shapes.push((format!("convs.{i}.conv.weight"), vec![f, d, k]));
                shapes.push((format!("convs.{i}.conv.bias"), vec![f]));
            }
        }
    }
    shapes.push((
        "head.weight".to_string(),
        vec![cfg.num_labels(), cfg.head_width()],
    ));
    shapes.push(("head.bias".to_string(), vec![cfg.num_labels()]));
    shapes.push(("ngram.weight".to_string(), vec![cfg.ngram.buckets]));
    shapes
}

/// Seeded initial weights: N(0, 1/sqrt(D)) embeddings (padding id 0 starts at zero), Kaiming-
/// uniform-like convs and head scaled by fan-in, zero biases and n-gram weights (the linear
/// branch starts neutral and learns from the gradient alone).
fn init_weights(cfg: &ArchConfig, rng: &mut SplitMix64) -> Vec<NamedWeight> {
    expected_shapes(cfg)
        .into_iter()
        .map(|(name, shape)| {
            let count: usize = shape.iter().product();
            let values = if name.ends_with(".bias") || name == "ngram.weight" {
                vec![0.0; count]
            } else if name == "embedding.weight" {
                let std = 1.0 / (cfg.embed_dim as f64).sqrt();
                let mut v: Vec<f32> = (0..count).map(|_| (rng.normal() * std) as f32).collect();
                v[..cfg.embed_dim].fill(0.0);
                v
            } else {
                let fan_in: usize = shape[1..].iter().product();
                let bound = (6.0 / fan_in as f64).sqrt();
                (0..count)
                    .map(|_| ((rng.next_f64() * 2.0 - 1.0) * bound) as f32)
                    .collect()
            };
            (name, shape, values)
        })
        .collect()
}

/// Softmax probabilities `[N, C]` as rows of f32.
pub fn probabilities(logits: &Tensor) -> Result<Vec<Vec<f32>>> {
    candle_nn::ops::softmax(logits, D::Minus1)?.to_vec2::<f32>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_cfg() -> ArchConfig {
        ArchConfig {
            vocab_size: 12,
            embed_dim: 4,
            filters: 3,
            kernel_widths: vec![3, 5],
            seq_len: 6,
            labels: vec!["ham".into(), "ad".into(), "spam".into()],
            ngram: smsguard_core::ngrams::NgramConfig {
                buckets: 8,
                max_n: 2,
                max_chars: 16,
            },
            conv: ConvKind::Separable,
            head: HeadKind::Pooled,
        }
    }

    #[test]
    fn forward_matches_a_direct_convolution_plus_ngram_evidence() {
        let cfg = tiny_cfg();
        let mut weights = CharCnn::new(&cfg, 7).unwrap().named_weights().unwrap();
        let ngram = weights.iter_mut().find(|w| w.0 == "ngram.weight").unwrap();
        ngram.2 = vec![0.0, 0.5, -1.0, 2.0, 0.0, 0.0, 0.0, 0.0];
        let model = CharCnn::from_weights(&cfg, &weights).unwrap();
        let ids: Vec<u32> = vec![1, 5, 7, 2, 0, 0];
        let input = BatchInput {
            ids: Tensor::from_vec(ids.clone(), (1, 6), &Device::Cpu).unwrap(),
            ngram_ids: Tensor::from_vec(vec![1u32, 2, 0], (1, 3), &Device::Cpu).unwrap(),
            ngram_weights: Tensor::from_vec(vec![0.6f32, 0.8, 0.0], (1, 3), &Device::Cpu).unwrap(),
        };
        let logits = model.forward(&input).unwrap().to_vec2::<f32>().unwrap();
        let reference = reference_forward(&cfg, &weights, &ids);
        // Evidence 0.6 * 0.5 + 0.8 * -1 = -0.5 on every label but ham.
        let evidence = [0.0, -0.5, -0.5];
        for ((a, b), e) in logits[0].iter().zip(&reference).zip(evidence) {
            assert!((a - (b + e)).abs() < 1e-4, "{a} vs {b} + {e}");
        }
    }

    #[test]
    fn weights_round_trip_through_named_weights() {
        let cfg = tiny_cfg();
        let model = CharCnn::new(&cfg, 3).unwrap();
        let weights = model.named_weights().unwrap();
        let rebuilt = CharCnn::from_weights(&cfg, &weights).unwrap();
        assert_eq!(rebuilt.named_weights().unwrap(), weights);
        assert_eq!(
            model.parameter_count(),
            weights.iter().map(|w| w.2.len()).sum::<usize>()
        );
    }

    #[test]
    fn rejects_a_weight_of_the_wrong_shape() {
        let cfg = tiny_cfg();
        let mut weights = CharCnn::new(&cfg, 3).unwrap().named_weights().unwrap();
        weights[0].1 = vec![11, 4];
        assert!(CharCnn::from_weights(&cfg, &weights).is_err());
    }

    /// Plain loops following the contract in config.rs.
    fn reference_forward(cfg: &ArchConfig, w: &[NamedWeight], ids: &[u32]) -> Vec<f32> {
        let get = |name: &str| &w.iter().find(|x| x.0 == name).unwrap().2;
        let (d, f, l) = (cfg.embed_dim, cfg.filters, ids.len());
        let emb = get("embedding.weight");
        let x = |t: isize, c: usize| -> f32 {
            if t < 0 || t >= l as isize {
                0.0
            } else {
                emb[ids[t as usize] as usize * d + c]
            }
        };
        let mut pooled = Vec::new();
        for (i, &k) in cfg.kernel_widths.iter().enumerate() {
            let (dww, dwb) = (
                get(&format!("convs.{i}.dw.weight")),
                get(&format!("convs.{i}.dw.bias")),
            );
            let (pww, pwb) = (
                get(&format!("convs.{i}.pw.weight")),
                get(&format!("convs.{i}.pw.bias")),
            );
            let mut best = vec![f32::MIN; f];
            for t in 0..l {
                let dw: Vec<f32> = (0..d)
                    .map(|c| {
                        dwb[c]
                            + (0..k)
                                .map(|j| {
                                    dww[c * k + j]
                                        * x(t as isize + j as isize - (k / 2) as isize, c)
                                })
                                .sum::<f32>()
                    })
                    .collect();
                for o in 0..f {
                    let v = (pwb[o] + (0..d).map(|c| pww[o * d + c] * dw[c]).sum::<f32>()).max(0.0);
                    best[o] = best[o].max(v);
                }
            }
            pooled.extend(best);
        }
        let (hw, hb) = (get("head.weight"), get("head.bias"));
        (0..cfg.num_labels())
            .map(|c| {
                hb[c]
                    + pooled
                        .iter()
                        .enumerate()
                        .map(|(j, p)| hw[c * pooled.len() + j] * p)
                        .sum::<f32>()
            })
            .collect()
    }
}
