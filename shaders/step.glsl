// The step info (binding 4 of every dispatch): the values that change between
// steps, written by the host before each submission (runtime/backend/vulkan/vk_internal.h,
// vk_step_info, mirrors this block). Shaders read positions from here, not
// from push constants, so a recorded decode step can be replayed unchanged.
layout(set = 0, binding = 4) uniform StepInfo {
    uint pos0;     // position of the step's first token
    uint n_tokens; // rows of the step
    uint pad0, pad1;
} sinfo;
