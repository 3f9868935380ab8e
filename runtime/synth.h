/* Deterministic random BF16 checkpoints for tests and benchmarks.
 *
 * The same (config, seed) gives byte-identical files on every machine: values
 * come from a fixed integer PRNG (splitmix64 per tensor, keyed by the seed and
 * the tensor name) and only exactly-rounded float arithmetic, never libm. */
#ifndef FP4RT_SYNTH_H
#define FP4RT_SYNTH_H

#include "schema.h"

#include <stdint.h>

/* Writes out_dir/config.json, out_dir/generation_config.json and the weights
 * (model.safetensors, or shards of about shard_bytes with an index; 0 = 4 GiB)
 * for cfg. Everything goes to a temporary directory renamed into place when
 * complete; out_dir must not exist unless force. Peak memory is one tensor.
 *
 * Value scales (chosen so activations stay O(1) through every layer and the
 * logits of random tokens have a standard deviation of about 2):
 *   linear [N, K]     N(0, 1/K), output projections (o_proj, out_proj,
 *                     down_proj) half that standard deviation;
 *   lm_head, embed    N(0, 4/hidden) (logits ~ N(0, 4) after the final norm);
 *   zero-centred norm N(0, 0.1^2) (used as 1 + w);
 *   gated-norm weight 1 + N(0, 0.1^2);
 *   conv1d            N(0, 0.5^2);
 *   A_log             log(U(1, 16));
 *   dt_bias           softplus^-1(dt), dt log-uniform in [1e-3, 1e-1] (Mamba's
 *                     initialisation: slow and fast decays both present).
 * "N" is an Irwin-Hall(4) approximation of the normal (bounded at 3.46 sd). */
fp4rt_status fp4rt_synth(const fp4rt_config *cfg, const char *out_dir, uint64_t seed,
                         uint64_t shard_bytes, int force);

/* Fills out[n] with the BF16 values of tensor t (as fp4rt_synth writes them).
 * Exposed for tests. */
void fp4rt_synth_tensor(const fp4rt_config *cfg, const fp4rt_tensor_spec *t, uint64_t seed,
                        uint16_t *out, size_t n);

#endif
