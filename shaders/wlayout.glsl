// The stored order of a linear's weights inside each row (included after
// linear_pc.glsl; the host side is runtime/backend/vulkan/vk_wlayout.c).
//
// pc.il == 0: the checkpoint's order, weight k of a row at position k.
// pc.il == B > 0: the decode layout of linear_mvi.comp (BF16, FP8 and NVFP4
// rows with K % 16 == 0, chosen at upload). A row's G = K / 16 groups of 16
// weights are cut into blocks of B groups (B = 16 / u, u the bytes of 4
// weights: 8 NVFP4, 4 FP8, 2 BF16), so a full block is 64 bytes. Inside a
// block come its 4 quarter-columns in order, quarter q holding weights
// 4q .. 4q + 3 of each group of the block, group by group (a full block's
// quarter is 16 bytes: one uvec4 for the invocation that runs chains
// 4q .. 4q + 3). The last block of a row may have gb < B groups; it is laid
// out the same way with gb in place of B. The 4 weights of a quarter keep
// their order and packing (NVFP4: low nibble first), so each stays inside the
// row's bytes and a row keeps its size: windows of whole rows are unchanged.
// Block scales (NVFP4) stay in the checkpoint's order.

// Position, inside its row, of weight k (0 <= k < pc.K) in the stored order.
uint wpos(uint k) {
    if (pc.il == 0u) return k;
    uint B = pc.il, g = k >> 4, b = g / B, gb = min(B, pc.K / 16u - b * B);
    return 16u * B * b + 4u * (gb * ((k >> 2) & 3u) + g - B * b) + (k & 3u);
}
