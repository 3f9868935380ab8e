#!/usr/bin/env bash
# No shader decodes stored numbers through FP16 (issue 19 item 2): a Vulkan
# driver may flush FP16 denormals (unless shaderDenormPreserveFloat16 is
# enabled), and lavapipe, which preserves them, cannot show it. The decoders in
# shaders/common.glsl build FP32 bits with integer operations instead; this
# check refuses unpackHalf2x16 (and the old FP16-bits E2M1 helper) anywhere
# under shaders/, naming the file and line, and any second E4M3 decoder.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
hits=$(grep -nE '\bunpackHalf2x16\b|\be2m1_to_f16_bits\b' "$root"/shaders/*.comp "$root"/shaders/*.glsl | grep -v '^[^:]*:[0-9]*: *//')
if [ -n "$hits" ]; then
    echo "check_no_f16_decode: FP16 decode in a shader (flushed to zero on drivers without FP16 denormals):" >&2
    echo "$hits" >&2
    exit 1
fi
# One E4M3 decoder (issue 19 item 4): e4m3_to_f32 in common.glsl, the integer
# one; no second definition and no older name for it.
defs=$(grep -nE '^\s*float\s+e4m3_to_f32\s*\(' "$root"/shaders/*.comp "$root"/shaders/*.glsl)
old=$(grep -nE '\bfp8_value\b' "$root"/shaders/*.comp "$root"/shaders/*.glsl)
if [ "$(printf '%s\n' "$defs" | grep -c .)" != 1 ] || [ -n "$old" ]; then
    echo "check_no_f16_decode: E4M3 must have one decoder, e4m3_to_f32 in shaders/common.glsl; found:" >&2
    printf '%s\n%s\n' "$defs" "$old" >&2
    exit 1
fi
echo "check_no_f16_decode: no shader decodes through FP16; one E4M3 decoder"
