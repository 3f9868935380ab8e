#version 450
// Prefill linear on cooperative matrices (GL_NV_cooperative_matrix; the host
// rewrites the SPIR-V to SPV_KHR_cooperative_matrix for KHR devices): see
// linear_coop.glsl.
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#include "linear_coop.glsl"
