#version 450
// Linear, whole rows per invocation, F32 weights: see linear_rows.glsl.
#define WFMT 2
#include "linear_rows.glsl"
