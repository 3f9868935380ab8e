/* Vulkan backend internals, shared by vk_*.c: the context, buffers, the
 * pipeline table and the recording helpers. One context = one VkDevice with one
 * compute queue. Transfers and prefill chunks are recorded into a one-shot
 * command buffer; a decode step (1 token) is recorded once into its own command
 * buffer and replayed while the program, the session buffers and the step flags
 * stay the same: only the step info, the input rows and the rotary positions
 * (host-visible, copied at the start of the step) change.
 * Every submission is waited for (synchronous). */
#ifndef FP4RT_VK_INTERNAL_H
#define FP4RT_VK_INTERNAL_H

#define VK_NO_PROTOTYPES
#include <volk.h>

#include "runtime/backend/vulkan/vk.h"
#include "runtime/backend/vulkan/vk_shaders.h"
#include "runtime/base/common.h"

/* A device buffer: one VkBuffer on its own allocation (few, large), or a
 * split buffer: n_parts VkBuffers on their own allocations, part i holding
 * bytes [i * part_bytes, (i + 1) * part_bytes) (the last one shorter); a
 * binding lies within one part (fp4rt_vk_window), copies and fills go part by
 * part. buf / mem are part 0. */
struct fp4rt_buffer {
    VkBuffer buf;
    VkDeviceMemory mem;
    VkDeviceSize bytes;
    void *mapped; /* host-visible buffers only (staging), else NULL */
    const char *what;
    int n_parts;
    VkDeviceSize part_bytes;
    VkBuffer *parts;          /* [n_parts] */
    VkDeviceMemory *part_mems; /* [n_parts] */
};

/* A kernel: fp4rt_vk_shader_id (FP4RT_VK_SHADER_<NAME>), generated from the
 * table of cmake/shaders.cmake. */
typedef fp4rt_vk_shader_id vk_kernel;

/* A host tensor uploaded to the weights buffer (dedup by host pointer). */
typedef struct vk_tensor {
    const void *host;
    VkDeviceSize bytes, offset; /* in the weights buffer */
    const char *name;
    uint32_t il; /* a linear weight in the decode layout (shaders/wlayout.glsl): groups per block; 0: as stored */
    const fp4rt_linear *lin; /* the linear whose weight it is (il != 0) */
} vk_tensor;

/* One storage-buffer binding: a window of a buffer. */
typedef struct vk_bind {
    const fp4rt_buffer *b;
    VkDeviceSize offset, range;
} vk_bind;

#define FP4RT_VK_MAX_BINDINGS 4
/* Binding FP4RT_VK_STEP_BINDING of every dispatch: the context's step info
 * (shaders/step.glsl), a small host-visible uniform buffer holding what changes
 * between steps, so a recorded command buffer can be replayed. */
#define FP4RT_VK_STEP_BINDING FP4RT_VK_MAX_BINDINGS
/* Push-constant bytes of every pipeline (the largest block, vk_pc_linear; the
 * spec guarantees 128) */
#define FP4RT_VK_PUSH_BYTES 72

/* Mirrors the StepInfo block of shaders/step.glsl (std140: 4-byte scalars). */
typedef struct vk_step_info {
    uint32_t pos0;     /* position of the step's first token */
    uint32_t n_tokens; /* rows of the step */
    uint32_t pad0, pad1;
} vk_step_info;

/* The key of the recorded decode step: replayed only while all of it is the same. */
typedef struct vk_replay {
    int valid;
    long dispatches, barriers; /* recorded in the step (--profile counts them per replay) */
    const fp4rt_program *p;
    fp4rt_buffer *scratch, *kv, *conv, *ssm, *logits;
    int n_ctx, chunk, kv_type, all_logits, no_logits, profile;
    int logits_rows;       /* fp4rt_step.logits_rows */
    int argmax;            /* the step ends with the greedy pick */
    const uint8_t *mask;   /* with this valid-id mask */
} vk_replay;

/* --profile: GPU timestamps around every op, summed per op kind and per linear
 * weight format. */
typedef struct vk_profile {
    int on;
    VkQueryPool pool;
    uint32_t n_queries; /* capacity of pool */
    double ns_per_tick; /* timestampPeriod */
    uint64_t valid_mask; /* timestampValidBits */
    double op_ms[FP4RT_OP_COUNT];
    long op_calls[FP4RT_OP_COUNT];
    double lin_ms[FP4RT_W_COUNT];
    long lin_calls[FP4RT_W_COUNT];
    long steps, replays;
    long dispatches, barriers; /* recorded or replayed, over all steps */
} vk_profile;

/* Dispatch ordering (vk_dispatch.c): the buffer ranges dispatches recorded
 * since the last barrier read and wrote. A dispatch that reads what one of them
 * wrote, or writes what one of them read or wrote, gets a barrier first;
 * independent dispatches run without one. */
#define VK_HAZARD_MAX 48
typedef struct vk_range {
    VkBuffer b;
    VkDeviceSize lo, hi;
} vk_range;
typedef struct vk_hazards {
    vk_range w[VK_HAZARD_MAX], r[VK_HAZARD_MAX];
    int nw, nr;
    long dispatches, barriers; /* in the recording */
} vk_hazards;

typedef struct vk_ctx {
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice pdev;
    VkDevice dev;
    struct VolkDeviceTable vt; /* device functions of this context */
    VkQueue queue;
    uint32_t queue_family;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties mem_props;
    fp4rt_vk_device_desc desc;
    int index;
    VkDeviceSize max_range;  /* binding limit: maxStorageBufferRange, or lower with FP4RT_VK_MAX_RANGE (tests) */
    VkDeviceSize align;      /* minStorageBufferOffsetAlignment */
    VkDeviceSize piece_range; /* largest weight piece bound at once: max_range, or lower with
                                 FP4RT_VK_PIECE_RANGE (tests: linears in pieces, nothing else) */
    VkDeviceSize act_range;   /* largest activation window of a linear: max_range, or FP4RT_VK_MAX_ACT_RANGE (tests) */
    VkDeviceSize max_alloc;   /* largest buffer / allocation: maxMemoryAllocationSize, maxBufferSize, or lower with
                                 FP4RT_VK_MAX_ALLOC (max_alloc_knob); weights and KV cache are split below it */
    int max_alloc_knob;
    int linear_rows;          /* linears run linear_rows_* (shaders/linear_rows.comp: whole rows per
                                 invocation): software devices, FP4RT_VK_LINEAR */
    int coop;                 /* FP4RT_VK_COOP_*: prefill FP8 / W4A4 linears on linear_coop(_emu).comp */
    int idot;                 /* prefill W4A4 linears on linear_i8.comp (packed integer dot products) */
    int exact;                /* FP4RT_VK_EXACT=1: every linear on the bit-exact kernels */
    int linear_subgroup;      /* decode linears reduce with subgroup shuffles (desc.subgroup_shuffle, not FP4RT_VK_NO_SUBGROUP) */
    int fuse;                 /* neighbouring element-wise ops in one dispatch (ADD + RMSNORM; SWIGLU / SIGMOID_GATE
                                 into the decode linear, vk_fuse_linear.c; FP4RT_VK_FUSE) */
    int interleave;           /* BF16 / FP8 / NVFP4 linear weights (K % 16 == 0) go up in the decode layout and
                                 decode runs linear_mvi_* (not linear_rows; FP4RT_VK_INTERLEAVE=0 turns it off) */

    VkCommandPool cmd_pool;
    VkCommandBuffer cmd;      /* the command buffer being recorded: cmd_once or cmd_step */
    VkCommandBuffer cmd_once; /* transfers and prefill chunks, re-recorded each time */
    VkCommandBuffer cmd_step; /* the decode step, recorded once and replayed (replay) */
    VkFence fence;
    VkCommandBuffer cmd_xfer[2]; /* uploads through the two staging halves (vk_memory.c) */
    VkFence xfer_fence[2];
    int recording;
    /* != 0 after a submission timed out or the device was lost: every later
     * submission fails at once (the model must be loaded again); 2 once the
     * device was waited idle after it (buffers may then be freed) */
    int lost;
    char work[96]; /* what the recording being submitted does, for errors ("prefill step ...") */
    vk_replay replay;
    vk_profile prof;
    fp4rt_buffer *staging; /* bounded host-visible buffer for uploads / downloads */

    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkPipelineCache cache;
    VkPipeline pipes[FP4RT_VK_SHADER_COUNT]; /* created on first use */
    uint32_t writes[FP4RT_VK_SHADER_COUNT];  /* bindings each kernel may write (vk_spirv_access.c), set with pipes */
    vk_hazards hz;
    int full_barriers;                       /* FP4RT_VK_FULL_BARRIERS=1: a barrier after every dispatch */
    int pipes_created;            /* pipelines created by this context (save the cache if any) */
    char *cache_path;             /* on-disk pipeline cache file, NULL: no location known */
    size_t cache_loaded_bytes;    /* Vulkan cache data loaded from it (0: started empty) */
    uint64_t cache_loaded_sum;    /* its checksum: an unchanged cache is not rewritten */

    fp4rt_buffer *dummy;     /* bound to unused bindings */
    fp4rt_buffer *step_info; /* device-local vk_step_info, bound at FP4RT_VK_STEP_BINDING: every dispatch reads
                                it, so it is copied from step_host at the start of each recorded step */
    fp4rt_buffer *step_host; /* host-visible vk_step_info the host writes before a step */
    fp4rt_buffer *weights;   /* every tensor of the prepared program */
    vk_tensor *tensors;
    int n_tensors, cap_tensors;
    const fp4rt_program *prepared;
    fp4rt_buffer *xq;        /* quantized activations [chunk, max K] f32 */
    fp4rt_buffer *input;      /* device-local [chunk, hidden] f32: the step's embedding rows, copied from
                                 input_host at the start of the step */
    fp4rt_buffer *input_host; /* host-visible [chunk, hidden] f32: where the host writes them */
    fp4rt_buffer *pick;      /* host-visible [FP4RT_DECODE_ROWS_MAX][2] u32: greedy pick, NaN seen (vk_sample.c) */
    fp4rt_buffer *mask;      /* valid-id mask, a bit per id, of mask_host */
    const uint8_t *mask_host;
    int mask_n;
    fp4rt_buffer *topk_work; /* device-local: two halves of [groups][k] candidate pairs (vk_topk.c) */
    fp4rt_buffer *topk_pen;  /* host-visible [n_pen] (id, count) of the last top-k request */
    fp4rt_buffer *topk_out;  /* host-visible [FP4RT_TOPK_MAX] (value bits, id) pairs */
    uint64_t mask_version;   /* uploads of the mask so far */
    uint8_t *topk_mask;      /* [mask_n] host copy of the mask as of upload topk_mask_version */
    uint64_t topk_mask_version;
    fp4rt_buffer *rope_tab;  /* [n_ctx][rotary_dim / 2][cos, sin] of the program's RoPE mode */
    fp4rt_buffer *rope_pos;  /* device-local [chunk][3] i32: the step's rotary positions (t, h, w) per row,
                                copied from rope_pos_host at the start of the step (NULL: no ROPE op) */
    fp4rt_buffer *rope_pos_host; /* host-visible [chunk][3] i32: where the host writes them */
    int rope_mode;           /* the mode rope_tab was built for (fp4rt_rope_mode) */
    fp4rt_buffer *attn_ws;   /* attention partials (vk_op_attention.c), NULL: none needed */
    int rope_ctx, rope_dim;
    /* the (program, chunk, n_ctx, KV type) ensure_workspace last sized for: a
     * step with the same skips the walk over the ops (reset by prepare) */
    struct {
        const fp4rt_program *p;
        int chunk, n_ctx, kv_type;
    } ws_key;
    double rope_theta;
    int synthetic;       /* prepared with prepare_synthetic: placeholders come from synth_seed */
    uint64_t synth_seed;
} vk_ctx;

/* vk_loader.c */
fp4rt_status fp4rt_vk_load(void);
fp4rt_status fp4rt_vk_instance_create(VkInstance *inst, VkDebugUtilsMessengerEXT *msg);
void fp4rt_vk_instance_destroy(VkInstance inst, VkDebugUtilsMessengerEXT msg);
const char *fp4rt_vk_result_name(VkResult r);
fp4rt_status fp4rt_vk_check(VkResult r, const char *what);

/* vk_dispatch.c: submissions */
/* fp4rt_vk_check, and VK_ERROR_DEVICE_LOST marks the context lost with one line
 * naming the work (vk_ctx.work). */
fp4rt_status fp4rt_vk_result(vk_ctx *c, VkResult r, const char *what);
/* Waits for fence f (then resets it) within the fence timeout
 * (FP4RT_VK_FENCE_TIMEOUT_MS); a timeout or a lost device marks the context lost. */
fp4rt_status fp4rt_vk_wait_fence(vk_ctx *c, VkFence f);
/* Names the work of the next submission for its errors (printf format). */
void fp4rt_vk_set_work(vk_ctx *c, const char *fmt, ...) FP4RT_PRINTF(2, 3);
/* A barrier now if dispatches since the last one touched memory: before a copy
 * or fill is recorded into c->cmd. */
void fp4rt_vk_hazard_flush(vk_ctx *c);

/* vk_device.c */
/* 1 if the physical device offers extension `name`. */
int fp4rt_vk_has_device_ext(VkPhysicalDevice pd, const char *name);
void fp4rt_vk_describe_physical(VkInstance inst, VkPhysicalDevice pd, fp4rt_vk_device_desc *d);
fp4rt_status fp4rt_vk_device_open(vk_ctx *c, int index);
void fp4rt_vk_device_close(vk_ctx *c);

/* The push constants of every linear kernel (shaders/linear_pc.glsl). */
typedef struct vk_pc_linear {
    uint32_t K, fmt, x_off, x_stride, y_off, y_stride, N, T, w_off, s_off, aligned;
    float post;
    uint32_t post_off; /* != 0: the post scale of token t is x[post_off + t] (act_quant modes 2 / 4) */
    uint32_t il;       /* the weights' stored order: 0 the checkpoint's, else groups per block (vk_wlayout.c) */
    /* linear_mvi: the fused element-wise op on x while staged (0 none, 1 SWIGLU,
     * 2 SIGMOID_GATE; its second operand at pre_off in the x binding, vk_fuse_linear.c) */
    uint32_t pre, pre_off, pre_gd, pre_gs;
} vk_pc_linear;
_Static_assert(sizeof(vk_pc_linear) == 72, "vk_pc_linear mirrors shaders/linear_pc.glsl");
_Static_assert(sizeof(vk_pc_linear) <= FP4RT_VK_PUSH_BYTES, "push constants fit");

/* vk_coop.c */
/* The cooperative-matrix kinds a physical device offers: bit FP4RT_VK_COOP_KHR
 * and / or bit FP4RT_VK_COOP_NV. */
int fp4rt_vk_coop_probe(VkInstance inst, VkPhysicalDevice pd, uint32_t api_version);
/* Structures chained into VkDeviceCreateInfo for c->coop. */
typedef struct vk_coop_enable {
    VkPhysicalDeviceVulkan12Features f12;
    VkPhysicalDeviceCooperativeMatrixFeaturesNV nv;
    uint64_t khr[4]; /* VkPhysicalDeviceCooperativeMatrixFeaturesKHR (not in Debian 12's headers) */
} vk_coop_enable;
/* Adds c->coop's features to *chain and its extension to exts[*n_exts]. */
void fp4rt_vk_coop_enable(const vk_ctx *c, vk_coop_enable *s, const char **exts, uint32_t *n_exts, void **chain);
/* Runs linear_coop on exact FP8 and NVFP4 products once; on a failure or an
 * error above 1e-5 of the magnitude sum it logs a warning and sets c->coop to
 * none (never an error: the other kernels remain). */
fp4rt_status fp4rt_vk_coop_check(vk_ctx *c);

/* vk_memory.c */
/* host_visible: mapped, coherent (b->mapped); else device-local. One part: a
 * buffer over c->max_alloc fails with one line (OUT_OF_MEMORY). */
fp4rt_status fp4rt_vk_buffer_create(vk_ctx *c, VkDeviceSize bytes, int host_visible, const char *what,
                                    fp4rt_buffer **out);
/* Like fp4rt_vk_buffer_create, but a buffer over c->max_alloc is made of parts of
 * the largest multiple of granule (> 0) within it: no binding may cross a
 * multiple of granule bytes. */
fp4rt_status fp4rt_vk_buffer_create_split(vk_ctx *c, VkDeviceSize bytes, VkDeviceSize granule, int host_visible,
                                          const char *what, fp4rt_buffer **out);
/* Fails (OUT_OF_MEMORY, one line: needed and available GiB) when bytes exceed
 * what the device's memory budget (VK_EXT_memory_budget, where present) leaves. */
fp4rt_status fp4rt_vk_memory_check(vk_ctx *c, VkDeviceSize bytes, const char *what);
/* The part holding byte off of b: its VkBuffer, off relative to it (*rel) and
 * the bytes from there to the part's end (*left, may be NULL). */
VkBuffer fp4rt_vk_part(const fp4rt_buffer *b, VkDeviceSize off, VkDeviceSize *rel, VkDeviceSize *left);
/* Records copies of n bytes src[src_off..] -> dst[dst_off..] into cb, split at
 * both buffers' part boundaries. */
void fp4rt_vk_cmd_copy(vk_ctx *c, VkCommandBuffer cb, const fp4rt_buffer *dst, VkDeviceSize dst_off,
                       const fp4rt_buffer *src, VkDeviceSize src_off, VkDeviceSize n);
void fp4rt_vk_buffer_destroy(vk_ctx *c, fp4rt_buffer *b);
fp4rt_status fp4rt_vk_upload(vk_ctx *c, fp4rt_buffer *b, VkDeviceSize off, const void *src, size_t n);
/* Uploads the synthetic content of placeholder bytes [ptr, ptr + n) of w
 * (fp4rt_weights_synth_bytes, generated straight into the staging buffer). */
fp4rt_status fp4rt_vk_upload_synth(vk_ctx *c, fp4rt_buffer *b, VkDeviceSize off, const fp4rt_weights *w,
                                   const void *ptr, size_t n, uint64_t seed);
fp4rt_status fp4rt_vk_download(vk_ctx *c, fp4rt_buffer *b, VkDeviceSize off, void *dst, size_t n);
fp4rt_status fp4rt_vk_fill_zero(vk_ctx *c, fp4rt_buffer *b);
/* Records a copy of n bytes of src at src_off to dst at dst_off into the
 * recording (begun if none), ordered before what is recorded after it. */
fp4rt_status fp4rt_vk_record_copy(vk_ctx *c, fp4rt_buffer *dst, VkDeviceSize dst_off, fp4rt_buffer *src,
                                  VkDeviceSize src_off, size_t n);
/* fp4rt_vk_record_copy, then submitted and waited for. */
fp4rt_status fp4rt_vk_copy(vk_ctx *c, fp4rt_buffer *dst, VkDeviceSize dst_off, fp4rt_buffer *src,
                           VkDeviceSize src_off, size_t n);

/* vk_pipeline.c */
fp4rt_status fp4rt_vk_pipelines_init(vk_ctx *c);
void fp4rt_vk_pipelines_free(vk_ctx *c);
fp4rt_status fp4rt_vk_pipeline_get(vk_ctx *c, vk_kernel k, VkPipeline *out);

/* vk_pipeline_cache.c: *data (malloc'd, freed by the caller) gets the
 * validated Vulkan cache data of the on-disk cache, or NULL (missing, stale or
 * corrupt: logged, never an error). save writes it back on destroy when
 * pipelines were created and the data changed; failures are logged only. */
void fp4rt_vk_pipeline_cache_load(vk_ctx *c, void **data, size_t *n);
void fp4rt_vk_pipeline_cache_save(vk_ctx *c);

/* vk_dispatch.c */
/* Starts recording into the one-shot command buffer (no-op while recording). */
fp4rt_status fp4rt_vk_begin(vk_ctx *c);
/* Starts recording the replayable decode step into cmd_step. */
fp4rt_status fp4rt_vk_begin_step(vk_ctx *c);
/* Ends what is being recorded (if anything), submits it and waits. */
fp4rt_status fp4rt_vk_submit_wait(vk_ctx *c);
/* Drops what is being recorded (after an error). */
void fp4rt_vk_abandon(vk_ctx *c);
/* Submits the recorded decode step again and waits. */
fp4rt_status fp4rt_vk_replay_step(vk_ctx *c);
/* Records a timestamp (query q) once all earlier work is done (--profile). */
void fp4rt_vk_timestamp(vk_ctx *c, uint32_t q);
/* Binds the windows (NULL buffer: the dummy) and the step info, pushes the
 * constants and records one dispatch followed by a full compute barrier. */
fp4rt_status fp4rt_vk_dispatch(vk_ctx *c, vk_kernel k, const vk_bind *binds, int n_binds,
                               const void *push, size_t push_bytes, uint32_t gx, uint32_t gy,
                               uint32_t gz);
/* A window of `bytes` at byte `offset` of b, aligned down to the device's offset
 * alignment; *skew gets the bytes between the window start and offset. Fails,
 * naming `what`, if the window exceeds maxStorageBufferRange. */
fp4rt_status fp4rt_vk_window(const vk_ctx *c, const fp4rt_buffer *b, VkDeviceSize offset, VkDeviceSize bytes,
                             const char *what, vk_bind *out, VkDeviceSize *skew);

/* vk_bandwidth.c: backend.h measure_bandwidth */
fp4rt_status fp4rt_vk_measure_bandwidth(void *ctx, double *bytes_per_s);
/* vk_profile.c: --profile (or FP4RT_PROFILE=1). begin records the pool reset
 * and the first timestamp of a step, op the timestamp after op i, collect adds
 * the submitted step's times, report logs the totals (at destroy). */
fp4rt_status fp4rt_vk_profile_enable(vk_ctx *c, int on);
fp4rt_status fp4rt_vk_profile_begin(vk_ctx *c, const fp4rt_program *p);
void fp4rt_vk_profile_op(vk_ctx *c, int i);
fp4rt_status fp4rt_vk_profile_collect(vk_ctx *c, const fp4rt_program *p, int replayed);
void fp4rt_vk_profile_report(vk_ctx *c);
/* backend.h profile_take: the per-op-kind GPU time and calls since the last take, zeroed. */
fp4rt_status fp4rt_vk_profile_take(void *vc, double *seconds, long *calls);
void fp4rt_vk_profile_free(vk_ctx *c);

/* vk_sample.c: greedy pick on the device. prepare (before recording) creates
 * the pick buffer and uploads the mask of n ids (a new mask buffer invalidates
 * the recorded decode step); rec records the pick of n logits at float `offset`
 * of `logits` (the mask prepared for at least n ids) into pick slot `slot`
 * (0 .. FP4RT_DECODE_ROWS_MAX - 1); result reads a slot after the submission
 * (-1: NaN). */
fp4rt_status fp4rt_vk_argmax_prepare(vk_ctx *c, const uint8_t *valid, int n);
fp4rt_status fp4rt_vk_rec_argmax(vk_ctx *c, const fp4rt_buffer *logits, size_t offset, int n, const uint8_t *valid,
                                 int slot);
int32_t fp4rt_vk_pick_result(const vk_ctx *c, int slot);
fp4rt_status fp4rt_vk_argmax(void *vc, fp4rt_buffer *logits, size_t offset, int n, const uint8_t *valid,
                             int32_t *out);

/* vk_topk.c: backend.h top_k */
fp4rt_status fp4rt_vk_top_k(void *vc, fp4rt_buffer *logits, size_t offset, int n, const fp4rt_topk_request *req,
                            float *vals, int32_t *ids);

/* vk_ops.c */
/* What a recorder sees. A decode step (replay = 1) is recorded once and
 * replayed at every position: its recorders must not read step->pos0 (-1 there)
 * or step->tokens (NULL); positions come from the step info (shaders/step.glsl).
 * Prefill chunks (replay = 0) are recorded per chunk and see the real step. */
typedef struct vk_step {
    vk_ctx *c;
    const fp4rt_program *p;
    const fp4rt_session_buffers *sb;
    const fp4rt_step *step;
    int replay;
} vk_step;
fp4rt_status fp4rt_vk_record_op(const vk_step *s, const fp4rt_op *op);
/* The uploaded copy of host tensor `host`, or NULL. */
const vk_tensor *fp4rt_vk_tensor_find(const vk_ctx *c, const void *host);

/* vk_wlayout.c: the decode layout of linear weights (shaders/wlayout.glsl). */
/* Groups per block of l's weight in the decode layout (BF16 2, FP8 4, NVFP4 8),
 * or 0 where it has none (F16, F32, K % 16 != 0). */
uint32_t fp4rt_vk_wlayout_blocks(const fp4rt_linear *l);
/* One row of G groups in the checkpoint's order (src) to the decode layout of
 * B groups per block (dst, the same size; no overlap). */
void fp4rt_vk_wlayout_row(const uint8_t *src, uint8_t *dst, uint32_t G, uint32_t B);
/* Uploads n bytes of whole weight rows (row_bytes each, G groups) to b at off,
 * each row permuted to the decode layout of B groups per block; from ptr, or
 * generated when w is not NULL (synthetic weights: ptr a placeholder of w). */
fp4rt_status fp4rt_vk_upload_wlayout(vk_ctx *c, fp4rt_buffer *b, VkDeviceSize off, const void *ptr, size_t n,
                                     size_t row_bytes, uint32_t G, uint32_t B, const fp4rt_weights *w,
                                     uint64_t seed);

#endif
