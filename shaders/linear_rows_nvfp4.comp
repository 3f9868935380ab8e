#version 450
// Linear, whole rows per invocation, NVFP4 (W4A16 and W4A4) weights: see linear_rows.glsl.
#define WFMT 4
#include "linear_rows.glsl"
