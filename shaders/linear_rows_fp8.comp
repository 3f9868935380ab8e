#version 450
// Linear, whole rows per invocation, FP8 E4M3 weights: see linear_rows.glsl.
#define WFMT 3
#include "linear_rows.glsl"
