#!/usr/bin/env bash
# The layering rule (docs/ARCHITECTURE.md), checked from the #include lines:
# a folder includes only itself and folders below it,
#   base < loader < model < backend < text < vision < engine < tools < server < cli
# where "backend" is runtime/backend/ (the interface) below the concrete
# backends (runtime/backend/cpu/, runtime/backend/vulkan/, the CUDA module
# cuda/ with its loader runtime/backend/cuda*.[ch] and cu_abi.h), which may not include one another; only the registry
# (runtime/backend/registry.c) names concrete backends. Includes are written
# from the repository root ("runtime/base/common.h") or name the public
# header ("fp4rt.h"). Prints each offending file:line and exits 1.
set -uo pipefail
cd "$(dirname "$0")/.."

# rank of a path's folder; concrete backends get 3.5 (written 35 vs 30), the
# registry's table 3.6
rank() {
    case "$1" in
    runtime/base/*) echo 0 ;;
    loader/*) echo 10 ;;
    runtime/model/*) echo 20 ;;
    runtime/backend/registry.c) echo 36 ;; # the table above the backends it lists
    runtime/backend/cpu/* | runtime/backend/vulkan/* | cuda/* | runtime/backend/cu_abi.h | runtime/backend/cuda*) echo 35 ;;
    runtime/backend/*) echo 30 ;;
    runtime/text/*) echo 40 ;;
    runtime/vision/*) echo 45 ;;
    runtime/engine/*) echo 50 ;;
    runtime/tools/*) echo 60 ;;
    runtime/server/*) echo 65 ;;
    cli/*) echo 70 ;;
    *) echo -1 ;;
    esac
}
# a concrete backend's folder, or "" for any other path
backend_of() {
    case "$1" in
    runtime/backend/cpu/*) echo cpu ;;
    runtime/backend/vulkan/*) echo vulkan ;;
    cuda/* | runtime/backend/cu_abi.h | runtime/backend/cuda*) echo cuda ;; # the module and its loader
    *) echo "" ;;
    esac
}

bad=0
checked=0
while IFS= read -r file; do
    from=$(rank "$file")
    [ "$from" -ge 0 ] || continue
    from_be=$(backend_of "$file")
    while IFS=: read -r line inc; do
        checked=$((checked + 1))
        [ "$inc" = "fp4rt.h" ] && continue
        case "$inc" in
        cuda_fp16.h | cuda_bf16.h | cuda_fp8.h | cuda_runtime.h) continue ;; # the CUDA toolkit's, in quotes by habit
        generated/*) continue ;; # the build tree's generated headers (cmake/shaders.cmake)
        esac
        if [ ! -f "$inc" ]; then
            echo "$file:$line: #include \"$inc\" is not a path from the repository root"
            bad=$((bad + 1))
            continue
        fi
        to=$(rank "$inc")
        to_be=$(backend_of "$inc")
        why=""
        if [ "$to" -lt 0 ]; then
            why="outside the library's folders"
        elif [ -n "$to_be" ] && [ "$to_be" != "$from_be" ] && [ "$file" != runtime/backend/registry.c ]; then
            why="names the $to_be backend (only runtime/backend/registry.c may)"
        elif [ "$to" -gt "$from" ]; then
            why="includes a higher layer"
        fi
        if [ -n "$why" ]; then
            echo "$file:$line: #include \"$inc\": $why"
            bad=$((bad + 1))
        fi
    done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$file" | sed -E 's/^([0-9]+):[^"]*"([^"]+)".*/\1:\2/')
done < <(git ls-files 'runtime/*' 'loader/*' 'cuda/*' 'cli/*' | grep -E '\.(c|h|cu|cuh)$')
echo "layering: $checked includes checked, $bad violations"
[ "$bad" -eq 0 ]
