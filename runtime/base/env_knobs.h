/* The environment knobs of fp4rt: one table, one row per FP4RT_* variable the
 * library (and the CUDA module) reads. Included by runtime/base/env.h (the
 * parsed values and typed getters), runtime/base/env_parse.h (header-only
 * parsing, shared with cuda/) and cli/cmd_env.c (`fp4rt env`).
 *
 * X(NAME, TYPE, DEFAULT, CHOICES, DOC): the variable is FP4RT_<NAME>; TYPE is
 * BOOL (0/1, also true/false, yes/no, on/off), INT (signed decimal), SIZE
 * (unsigned decimal bytes, optional k/m/g suffix: KiB/MiB/GiB), STRING or ENUM
 * (one of CHOICES, '|'-separated); DEFAULT is the value used when the variable
 * is unset, empty or malformed ("" = unset: the library decides, as DOC says).
 * A malformed value is warned about once (naming the knob and the value) and
 * the default is used. No row may be conditional: the table is the same in
 * every build. */
#ifndef FP4RT_ENV_KNOBS_H
#define FP4RT_ENV_KNOBS_H

#define FP4RT_ENV_KNOBS(X)                                                                                             \
    X(CACHE_DIR, STRING, "", "",                                                                                       \
          "directory of the Vulkan pipeline cache (unset: $XDG_CACHE_HOME/fp4rt, else ~/.cache/fp4rt)")                \
    X(PROFILE, BOOL, "0", "",                                                                                          \
          "1: time every op, log the totals per op kind when the model is freed (as --profile)")                       \
    X(NO_CUDA, BOOL, "0", "",                                                                                          \
          "1: never load the CUDA module (no cuda devices)")                                                           \
    X(CUDA_MODULE, STRING, "", "",                                                                                     \
          "path of libfp4rt-cuda.so (unset: next to libfp4rt, next to the executable, or in its ../lib)")              \
    X(CUDA_GRAPHS, BOOL, "1", "",                                                                                      \
          "0: the CUDA backend launches each kernel instead of replaying CUDA graphs")                                 \
    X(CUDA_STAGING_KB, INT, "65536", "",                                                                               \
          "KiB of the CUDA backend's pinned upload staging (both halves; <= 0: the default)")                          \
    X(CPU_LINEAR, ENUM, "", "tiled|rows",                                                                              \
          "CPU prefill linears: tiled (weight rows decoded once per tile of rows x tokens) or rows (one dot per "      \
          "row and token); the same bits (unset: tiled)")                                                              \
    X(CPU_ISA, ENUM, "", "avx512|avx2|c",                                                                              \
          "cap the CPU kernels' instruction set: avx512, avx2 or c (portable); the same bits (unset: the best the "    \
          "CPU has)")                                                                                                  \
    X(CPU_AMX, BOOL, "1", "",                                                                                       \
          "0: BF16 linears of the default numerics mode on the FMA kernels instead of the AMX tile unit (where "      \
          "the CPU has it; other bits, docs/NUMERICS.md)")                                                            \
    X(EXACT, BOOL, "0", "",                                                                                            \
          "1: every session runs in the exact numerics mode (fp4rt_session_params.exact = 1, --exact)")               \
    X(MTP_DRAFT_VOCAB, INT, "0", "",                                                                                   \
          "the MTP head drafts from token ids 0 .. N-1 only (its lm_head over N rows; 0 or >= the vocabulary: all); "  \
          "the output is the same, the acceptance may drop")                                                           \
    X(VK_EXACT, BOOL, "0", "",                                                                                         \
          "1: every Vulkan linear on the exact kernels (the CPU's sums bit for bit), prefill too")                     \
    X(VK_COOPMAT, ENUM, "", "0|nv|khr|emu",                                                                            \
          "prefill linears on matrix units: 0 none, nv / khr that kind if the device has it, emu the "                 \
          "emulated kernel (unset: the device's kind)")                                                                \
    X(VK_IDOT, BOOL, "", "",                                                                                           \
          "1 / 0: W4A4 prefill on packed integer dot products on / off (unset: where accelerated and no "              \
          "matrix units)")                                                                                             \
    X(VK_LINEAR, ENUM, "", "rows|mv",                                                                                  \
          "Vulkan linear layout: rows (whole rows per invocation) or mv (unset: rows on software devices)")            \
    X(VK_INTERLEAVE, BOOL, "1", "",                                                                                    \
          "0: Vulkan linear weights keep the checkpoint's order and decode runs the older matrix-vector kernel "       \
          "(linear_mv; the same bits; for comparisons)")                                                               \
    X(VK_FUSE, BOOL, "1", "",                                                                                          \
          "0: the Vulkan recorder fuses nothing (an ADD and the RMSNORM of its output; a SWIGLU or "                  \
          "SIGMOID_GATE into the linear that reads it: linear_mvi or the FP8 / W4A4 activation "                        \
          "quantizer; the same bits; for comparisons)")                                                                \
    X(VK_NO_SUBGROUP, BOOL, "0", "",                                                                                   \
          "1: Vulkan decode linears reduce through shared memory, not subgroup shuffles")                              \
    X(VK_GDN_CHUNKED, BOOL, "1", "",                                                                                   \
          "0: Vulkan gated-delta prefill in the recurrent form instead of the chunked one")                            \
    X(VK_MAX_RANGE, SIZE, "", "",                                                                                      \
          "lower the Vulkan storage-binding limit of the whole device to this many bytes (tests)")                     \
    X(VK_PIECE_RANGE, SIZE, "", "",                                                                                    \
          "lower the weight pieces of Vulkan linears to this many bytes (tests)")                                      \
    X(VK_MAX_ACT_RANGE, SIZE, "", "",                                                                                  \
          "lower the activation / logits windows of Vulkan linears to this many bytes (tests)")                        \
    X(VK_MAX_ALLOC, SIZE, "", "",                                                                                      \
          "lower the largest Vulkan buffer / allocation to this many bytes (tests: emulate a 2-4 GiB driver "          \
          "limit with e.g. 64M; weights and the KV cache are then split into several buffers)")                        \
    X(VK_FULL_BARRIERS, BOOL, "0", "",                                                                                 \
          "1: a full barrier after every Vulkan dispatch (else only where a dispatch depends on an earlier one)")       \
    X(VK_FENCE_TIMEOUT_MS, INT, "0", "",                                                                               \
          "milliseconds one Vulkan submission may run before it counts as a GPU hang and the device is given "         \
          "up (<= 0: 120000 on GPUs, 3600000 on software devices)")

/* FP4RT_* variables that are not library knobs (build options, the test and
 * benchmark harness): recognised, so not warned about as unknown. Names ending
 * in '_' are prefixes. */
#define FP4RT_ENV_OTHER_NAMES                                                                                    \
    "FP4RT_CUDA", "FP4RT_VULKAN", "FP4RT_SANITIZE", "FP4RT_FUZZ", "FP4RT_FUZZ_FLAGS", "FP4RT_CUDA_ARCHS",         \
        "FP4RT_CUDA_PTX", "FP4RT_CU_TEST_ARCHS", "FP4RT_BIN", "FP4RT_BUILD", "FP4RT_TMP", "FP4RT_SHARED",         \
        "FP4RT_BENCH", "FP4RT_OPS_BENCH", "FP4RT_CHAT_FIXTURES", "FP4RT_QWEN36_TOKENIZER", "FP4RT_TEST_",        \
        "FP4RT_GPU_"

#endif
