/* Deterministic random BF16 checkpoints for tests and benchmarks.
 *
 * The same (config, seed) gives byte-identical files on every machine: values
 * come from a fixed integer PRNG (splitmix64 per tensor, keyed by the seed and
 * the tensor name) and only exactly-rounded float arithmetic, never libm. */
#ifndef FP4RT_SYNTH_H
#define FP4RT_SYNTH_H

#include "runtime/model/schema.h"

#include <stdint.h>

/* Writes out_dir/config.json, out_dir/generation_config.json and the weights
 * (with the vision tower of cfg->vision and preprocessor_config.json when cfg is
 * the nested Qwen3_5ForConditionalGeneration layout and vision.depth > 0)
 * (model.safetensors, or shards of about shard_bytes with an index; 0 = 4 GiB)
 * for cfg. Everything goes to a temporary directory renamed into place when
 * complete; out_dir must not exist unless force (loader/outdir.h: what force
 * may replace). Peak memory is one tensor.
 *
 * Value scales: activations stay O(1) through every layer, the logits of random
 * tokens have a standard deviation of about 2, and the model is not chaotic
 * (measured with the CPU backend: on "tiny", 1% weight noise moves the logits by
 * an NMSE of 3e-4 and nvfp4-all by 0.02, the context by 0.15; on qwen3.5-0.8b
 * nvfp4-all gives 0.04 and the context 0.1):
 *   embed             N(0, 1) untied; N(0, 4/hidden) tied (it is the lm_head);
 *   lm_head           N(0, 4/hidden) (logits ~ N(0, 4) after the final norm);
 *   linear [N, K]     N(0, 1/K); the residual-branch outputs (o_proj, out_proj,
 *                     down_proj) times stream / sqrt(2 n_layers) (GPT-2's
 *                     scaling), where the stream has unit scale except before
 *                     layer 0's MLP, where it is the embedding's; tied models get
 *                     layer 0's down_proj at twice N(0, 1/K), lifting the stream
 *                     from the small embedding to unit scale;
 *   zero-centred norm N(0, 0.1^2) (used as 1 + w);
 *   gated-norm weight 1 + N(0, 0.1^2);
 *   conv1d            N(0, 0.5^2);
 *   A_log             log(U(1, 16));
 *   dt_bias           softplus^-1(dt), dt log-uniform in [1e-3, 1e-1] (Mamba's
 *                     initialisation: slow and fast decays both present).
 * Values are keyed by the tensor name without its layout prefix, so the nested
 * and causal-lm layouts of one seed hold the same numbers (a shortened model
 * differs only in its output projections' scale).
 * "N" is an Irwin-Hall(4) approximation of the normal (bounded at 3.46 sd). */
fp4rt_status fp4rt_synth(const fp4rt_config *cfg, const char *out_dir, uint64_t seed,
                         uint64_t shard_bytes, int force);

/* Fills out[n] with the BF16 values of tensor t (as fp4rt_synth writes them).
 * Exposed for tests. */
void fp4rt_synth_tensor(const fp4rt_config *cfg, const fp4rt_tensor_spec *t, uint64_t seed,
                        uint16_t *out, size_t n);

#endif
