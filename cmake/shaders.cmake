# Compiles shaders/*.comp to SPIR-V with glslc (depfiles track the .glsl
# includes) and embeds them in ${CMAKE_BINARY_DIR}/generated/vk_shaders.c
# (FP4RT_SHADERS_C). Nothing generated is committed.
file(GLOB FP4RT_SHADER_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/shaders/*.comp)
set(gen ${CMAKE_BINARY_DIR}/generated)
file(MAKE_DIRECTORY ${gen}/spv)
set(spv_list "")
set(spv_files "")
foreach(src IN LISTS FP4RT_SHADER_SOURCES)
    get_filename_component(name ${src} NAME_WE)
    set(spv ${gen}/spv/${name}.spv)
    add_custom_command(OUTPUT ${spv}
        COMMAND ${GLSLC} --target-env=vulkan1.2 -O -MD -MF ${spv}.d -o ${spv} ${src}
        DEPENDS ${src}
        DEPFILE ${spv}.d
        COMMENT "glslc ${name}.comp"
        VERBATIM)
    list(APPEND spv_list "${name}=${spv}")
    list(APPEND spv_files ${spv})
endforeach()
string(REPLACE ";" "|" spv_arg "${spv_list}")
set(FP4RT_SHADERS_C ${gen}/vk_shaders.c)
add_custom_command(OUTPUT ${FP4RT_SHADERS_C}
    COMMAND ${CMAKE_COMMAND} -DOUT=${FP4RT_SHADERS_C} "-DSPV=${spv_arg}" -P ${PROJECT_SOURCE_DIR}/cmake/embed_spirv.cmake
    DEPENDS ${spv_files} ${PROJECT_SOURCE_DIR}/cmake/embed_spirv.cmake
    COMMENT "embedding SPIR-V"
    VERBATIM)
