#!/usr/bin/env bash
# fp4rt set-up on Debian 12. Two jobs:
#   ./build.sh main   install what is missing, build, make the default model
#                     (a synthetic Qwen3.5-0.8B quantized with NVIDIA's mixed
#                     NVFP4/FP8 recipe) and run it: greedy generation + bench
#   ./build.sh test   install what is missing, build, run every test
#                     (release build, then the same tests again in an
#                     ASan+UBSan clang build, plus the libFuzzer targets of the
#                     safetensors and config parsers); ends with "N passed, N failed"
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(build-essential cmake pkg-config libcjson-dev libpcre2-dev libutf8proc-dev clang libclang-rt-14-dev
    libvulkan-dev libvulkan-volk-dev glslc mesa-vulkan-drivers vulkan-validationlayers
    libedit-dev tmux libstb-dev libmicrohttpd-dev curl python3-venv chromium chromium-driver)

install_deps() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "build.sh: installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

jobs() { nproc 2>/dev/null || echo 2; }

build_release() {
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build build -j"$(jobs)"
}

main_job() {
    install_deps
    build_release
    mkdir -p models
    # The committed trained reference model (models/qwen35-kjv-10m/README.md),
    # quantized with NVIDIA's recipe: NVFP4 MLP and lm_head with MSE-chosen block
    # scales, FP8 attention and Gated DeltaNet projections. Re-made when missing or
    # older than the committed weights.
    local ref=models/qwen35-kjv-10m ref_nv=models/qwen35-kjv-10m-nvfp4
    if [ ! -f "$ref_nv/config.json" ] || [ "$ref/model.safetensors" -nt "$ref_nv/config.json" ]; then
        ./build/fp4rt quantize --in "$ref" --out "$ref_nv" --recipe nvidia-mixed --scale mse --force >/dev/null
    fi
    ./build/fp4rt inspect "$ref_nv" | tail -n 8
    echo "== a continuation by the trained reference model (10 M parameters, KJV Bible), NVFP4 / FP8 =="
    ./build/fp4rt run --model "$ref_nv" --raw --prompt "And it came to pass" -n 80 --seed 1
    # The bench runs on the Qwen3.5-0.8B shape: synthetic weights (real ones cannot
    # be downloaded here), quantized with the same recipe.
    local bf16=models/qwen3.5-0.8b-synth-bf16 model=models/qwen3.5-0.8b-synth-nvfp4
    [ -f "$model/tokenizer.json" ] || {
        [ -f "$bf16/tokenizer.json" ] || ./build/fp4rt synth --config qwen3.5-0.8b --out "$bf16" --seed 1 --force
        ./build/fp4rt quantize --in "$bf16" --out "$model" --recipe nvidia-mixed --force >/dev/null
    }
    ./build/fp4rt plan --model "$model" --ctx 4096
    echo "== bench (Qwen3.5-0.8B shape, synthetic weights) =="
    ./build/fp4rt bench --model "$model" --prompt 64 --gen 16
}

test_job() {
    install_deps
    build_release
    local log1 log2
    log1=$(mktemp)
    log2=$(mktemp)
    set +e
    # "long" tests are run on demand (ctest -L long); "heavy" ones (the 600-token
    # and 16-layer Vulkan parity, the serve tests that drive the openai client, a
    # 16-client load and a browser) run in the release build only
    (cd build && ctest --output-on-failure -LE long -j"$(jobs)") 2>&1 | tee "$log1"
    local rc1=${PIPESTATUS[0]}
    # -O1, as AddressSanitizer's documentation advises: the same checks on every
    # load and store that remains (~7x faster than -O0 on the model tests)
    CC=clang cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS=-O1 -DCMAKE_CXX_FLAGS=-O1 \
        -DFP4RT_SANITIZE=ON -DFP4RT_FUZZ=ON -DFP4RT_CUDA=OFF >/dev/null &&
        cmake --build build-asan -j"$(jobs)" >/dev/null &&
        (cd build-asan &&
            ASAN_OPTIONS=fast_unwind_on_malloc=0 LSAN_OPTIONS="suppressions=$PWD/../tests/lsan.supp" \
                ctest --output-on-failure -LE "long|heavy" -j"$(jobs)") 2>&1 | tee "$log2"
    local rc2=${PIPESTATUS[0]}
    set -e
    # (the sanitizer run unwinds fully at malloc so that leaks inside the Vulkan
    # loader and drivers, JIT code without frame pointers, match tests/lsan.supp)
    # ctest prints "NN% tests passed, F tests failed out of T"
    local p=0 f=0
    for log in "$log1" "$log2"; do
        local line
        line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
        if [ -n "$line" ]; then
            local fail total
            fail=$(echo "$line" | sed -E 's/.*passed, ([0-9]+) tests? failed out of ([0-9]+).*/\1/')
            total=$(echo "$line" | sed -E 's/.*failed out of ([0-9]+).*/\1/')
            p=$((p + total - fail))
            f=$((f + fail))
        else
            f=$((f + 1)) # a build or configure failure counts as a failure
        fi
    done
    rm -f "$log1" "$log2"
    echo "$p passed, $f failed"
    [ "$rc1" -eq 0 ] && [ "$rc2" -eq 0 ] && [ "$f" -eq 0 ]
}

case "${1:-}" in
main) main_job ;;
test) test_job ;;
*)
    echo "usage: ./build.sh main|test" >&2
    exit 2
    ;;
esac
