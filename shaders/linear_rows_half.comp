#version 450
// Linear, whole rows per invocation, BF16 / F16 (pc.fmt) weights: see linear_rows.glsl.
#define WFMT 0
#include "linear_rows.glsl"
