#!/usr/bin/env bash
# The prepared GPU device check (issue 5 item 6): one call, under 10 minutes.
#
#   run(command="bash tests/gpu-check.sh", carry=[".gpu-deps"], timeout_s=590)
#
# On the lent GPU machine (no network; nvcc, cmake, ninja, gcc and the NVIDIA
# driver are there, cJSON / PCRE2 / utf8proc / pkg-config / the Vulkan loader /
# volk / glslc are not): unpacks the Debian packages tests/gpu-deps.sh put in
# .gpu-deps/ into a private prefix (/tmp/fp4rt-deps, never /), builds a release
# for the card's own architecture, then runs, each step under its own timeout
# and logged, never stopping on a failed step, in order of value (when the
# budget runs out, what is left is reported as skipped: a second call with
# FP4RT_GPU_CHECK_SKIP set to the steps done spends the device time left):
#  correctness
#   env        nvidia-smi facts, toolchain versions, Vulkan loader / NVIDIA ICD
#              found and its libraries resolved (ldd: a bare image may lack
#              libglvnd0, which tests/gpu-deps.sh carries)
#   configure, build
#   devices    fp4rt devices (CUDA and Vulkan)
#   ctest-cuda ctest -L cuda: op parity and model parity of CUDA vs the CPU; a
#              failure is rerun with CUDA_LAUNCH_BLOCKING=1 FP4RT_CUDA_GRAPHS=0
#              (ctest-cuda-rerun) so that the failing kernel is named
#   spec-cuda  speculative decoding on CUDA (issue 16): the verify step in one
#              step (decode_rows) bit-identical to 1-token steps and its
#              rollback (test_verify: synth model, W4A4 recipe, kjv-10m), greedy
#              spec == plain for K = 1..5 (test_speculate: BF16, nvidia-mixed),
#              then the same with FP4RT_CUDA_GRAPHS=0 on a failure
#              (spec-cuda-rerun)
#   vk-ops, vk-model, vk-parity  the Vulkan backend on the NVIDIA card with the
#              Khronos validation layer, as in CI, and FP4RT_VK_COOPMAT=nv
#              (Debian 12's layer does not know VK_KHR_cooperative_matrix and
#              reports the rewritten KHR shader as invalid SPIR-V)
#  the 27B decode bandwidth figures
#   bandwidth  device copy bandwidth (tools/cu_bandwidth.cu, CUDA events)
#   bench-ctx1, vk-bench, bench-ctx8192  fp4rt bench --synthetic qwen3.6-27b:
#              decode on CUDA and Vulkan, % of the bandwidth limit
#   bench-spec fp4rt bench --spec 3 on kjv-10m (CUDA): decode tok/s with and
#              without MTP drafts, the verify step's cost against a decode step
#  prefill and kernels
#   bench-prefill4096, vk-prefill  prefill of 4096 / 512 tokens
#   fp4-bench  FP4RT_BENCH=1 test_cu_fp4_device (W4A4 kernels vs CPU + timing)
#   linear-bench  test_cu_linear_gpu bench (the linear kernels on the 27B shapes)
#   vk-coop-khr  the KHR cooperative-matrix kind (no layer)
#   vk-linear-prefill  the Vulkan prefill kernels against the exact one
#   vision-bench  the 27B's vision tower (synthetic) on one image: ms per image
# The SASS check of the FP4 MMA (tools/cu_fp4_sass_check.sh) runs on the build
# machine (ctest test_cu_fp4_sass_check), not here. It prints the plan (step,
# limit, when it would end if every step took its limit) first and a table (step, status, seconds, key number) LAST, also written to
# $OUT/summary.txt; all step logs go to $OUT/all-logs.txt (the device tool
# returns at most 8 files from $OUT, so the per-step logs are joined at the end).
#
# Anywhere else (no GPU) it builds the same way and reports the GPU steps as
# skipped. Settings (environment):
#   OUT                       where the table and the logs go (default out/gpu-check)
#   FP4RT_GPU_CHECK_BUDGET    seconds for the whole script (default 540)
#   FP4RT_GPU_ARCH            the sm target when no GPU is found (default 90a)
#   FP4RT_GPU_JOBS            build jobs (default min(nproc, 16))
#   FP4RT_GPU_VK_DEVICE       the device of the vk-* steps (default: the first
#                             NVIDIA one in fp4rt devices)
#   FP4RT_GPU_VK_VALIDATION=0 vk-* steps without the Khronos validation layer
#                             (on by default, as in CI)
#   FP4RT_GPU_CHECK_SKIP      step names to leave out, e.g. "ctest-cuda vk-model"
#                             for a second call that spends the device time left
#                             on the steps the first one ran out of time for
set -u
cd "$(dirname "$0")/.."
root=$PWD
OUT=${OUT:-$root/out/gpu-check}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
budget=${FP4RT_GPU_CHECK_BUDGET:-540}
t_start=$(date +%s)
work=$(mktemp -d /tmp/fp4rt-gpu-check.XXXXXX)
mkdir -p "$work/rec"
bld=$root/build-gpu
jobs=${FP4RT_GPU_JOBS:-$(n=$(nproc 2>/dev/null || echo 4); echo $((n < 16 ? n : 16)))}
steps=() # in run order, for the table

elapsed() { echo $(($(date +%s) - t_start)); }

# rec NAME STATUS SECONDS KEY: one table row
rec() { printf '%s\x1f%s\x1f%s\n' "$2" "$3" "$4" >"$work/rec/$1"; }

# key NAME: the key number of a step, read off its log
key() {
    local log=$OUT/$1.log
    [ -f "$log" ] || return 0
    case $1 in
    env) grep -m1 -E '^gpu: ' "$log" | cut -c6- ;;
    configure) grep -oE '(CUDA module|Vulkan backend) (ON|OFF)' "$log" | paste -sd' ' ;;
    build) grep -m1 -E '^(arch|FAILED|ninja: build stopped)' "$log" ;;
    devices) grep -E '^(cuda|vulkan)[: ]' "$log" | tr -s ' ' | paste -sd';' | cut -c1-90 ;;
    ctest-cuda | spec-cuda*) echo "$(grep -m1 -E 'tests passed|tests failed' "$log" | sed 's/ tests failed out of/ failed of/')," \
        "$(grep -c '(Skipped)' "$log") skipped" ;;
    bandwidth) grep -m1 -oE '[0-9.]+ GB/s' "$log" ;;
    linear-bench) grep -iE 'GB/s|TFLOP' "$log" | tail -n1 | tr -s ' ' | cut -c1-90 ;;
    fp4-bench) grep -E '(GB/s|TFLOP|us|ms)' "$log" | tail -n1 | tr -s ' ' | cut -c1-90 ;;
    bench-spec) { grep -m1 -oE '[0-9.]+x plain; outputs [A-Za-z]+' "$log"
        grep -m1 -oE 'decode [0-9.]+ ms' "$log"; grep -m1 -oE 'verify of [0-9]+ rows [0-9.]+ ms = [0-9.]+ decode steps' "$log"; } | paste -sd' ' | cut -c1-90 ;;
    bench-*) { grep -m1 -E '^decode ' "$log" | grep -oE '[0-9.]+ tokens/s median' | sed 's/ median/ decode/'
        grep -m1 -oE 'reaches +[0-9.]+%' "$log" | sed 's/reaches */= /;s/$/ of bw limit/'
        grep -m1 -E '^prefill ' "$log" | grep -oE '[0-9.]+ tokens/s' | sed 's/$/ prefill/'
        grep -m1 -E '^(read )?bandwidth ' "$log" | grep -oE '[0-9.]+ GB/s' | sed 's/^/bw /'; } | paste -sd' ' ;;
    vision-bench) grep -m1 -E '^vision encoder ' "$log" | grep -oE '[0-9.]+ ms per image' ;;
    vk-linear-prefill) grep -E 'x the exact' "$log" | sed -E 's/ +/ /g;s/ the exact kernel.s speed//' | paste -sd';' | cut -c1-90 ;;
    vk-*) grep -E 'passed|failed|FAIL|skipped' "$log" | tail -n1 | cut -c1-90 ;;
    *) tail -n1 "$log" | cut -c1-90 ;;
    esac
}

# step NAME LIMIT 'COMMAND': runs COMMAND (bash -c) under min(LIMIT, what is
# left of the budget) seconds, output to $OUT/NAME.log; exit 77 or a first
# output line "skipped: ..." counts as skipped. Never fails the script.
step() {
    local name=$1 limit=$2 cmd=$3 left t t0 rc st
    steps+=("$name")
    case " ${FP4RT_GPU_CHECK_SKIP:-} " in *" $name "*)
        echo "== [$(elapsed)s] $name: skipped (FP4RT_GPU_CHECK_SKIP)"
        rec "$name" skip 0 "FP4RT_GPU_CHECK_SKIP"
        return 0 ;;
    esac
    left=$((budget - $(elapsed) - 15))
    t=$((limit < left ? limit : left))
    if [ "$t" -lt 5 ]; then
        echo "== [$(elapsed)s] $name: skipped (out of time)"
        rec "$name" "skip" 0 "out of time (budget ${budget}s)"
        return 0
    fi
    echo "== [$(elapsed)s] $name (limit ${t}s)"
    t0=$(date +%s)
    timeout -k 5 "$t" bash -c "$cmd" >"$OUT/$name.log" 2>&1 </dev/null
    rc=$?
    local dt=$(($(date +%s) - t0))
    if [ $rc -eq 0 ] && grep -qm1 '^skipped' "$OUT/$name.log"; then rc=77; fi
    case $rc in
    0) st=ok ;;
    77) st=skip ;;
    124 | 137) st="TIMEOUT" ;;
    *) st="FAIL($rc)" ;;
    esac
    local k
    if [ $rc -eq 77 ]; then k=$(grep -m1 "skipped" "$OUT/$name.log" | sed "s/.*skipped/skipped/" | cut -c1-90); else k=$(key "$name"); fi
    rec "$name" "$st" "$dt" "$k"
    tail -n 4 "$OUT/$name.log" | sed 's/^/   | /' | cut -c1-200
    echo "   -> $st in ${dt}s${k:+: $k}"
}

skip() { steps+=("$1"); rec "$1" skip 0 "$2"; echo "== [$(elapsed)s] $1: skipped ($2)"; }

# ---- the private prefix: the carried Debian packages ------------------------
P=/tmp/fp4rt-deps
ML=$P/usr/lib/x86_64-linux-gnu
rm -rf "$P" && mkdir -p "$P"
ndeb=0
for f in "$root"/.gpu-deps/*.deb; do
    [ -f "$f" ] || continue
    if command -v dpkg-deb >/dev/null; then
        dpkg-deb -x "$f" "$P" && ndeb=$((ndeb + 1))
    else # no dpkg: a .deb is an ar archive holding data.tar.*
        python3 -c '
import io, sys, tarfile
d = open(sys.argv[1], "rb").read()
assert d[:8] == b"!<arch>\n"
i = 8
while i < len(d):
    name, size = d[i:i + 16].decode().strip().rstrip("/"), int(d[i + 48:i + 58])
    if name.startswith("data.tar"):
        tarfile.open(fileobj=io.BytesIO(d[i + 60:i + 60 + size])).extractall(sys.argv[2])
    i += 60 + size + (size & 1)
' "$f" "$P" && ndeb=$((ndeb + 1))
    fi
done
echo "== [$(elapsed)s] unpacked $ndeb packages from .gpu-deps into $P"
[ "$ndeb" -gt 0 ] || echo "   (none: run tests/gpu-deps.sh on the build machine and carry .gpu-deps)"
export PATH=$P/usr/bin:$PATH
export LD_LIBRARY_PATH=$ML${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export CMAKE_PREFIX_PATH=$P/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
if [ -x "$P/usr/bin/pkgconf" ]; then
    # only the prefix's .pc files, their paths under the prefix
    export PKG_CONFIG=$P/usr/bin/pkgconf
    export PKG_CONFIG_LIBDIR=$ML/pkgconfig:$P/usr/share/pkgconfig
    export PKG_CONFIG_SYSROOT_DIR=$P
    export PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
fi
[ -d "$P/usr/share/vulkan/explicit_layer.d" ] && export VK_LAYER_PATH=$P/usr/share/vulkan/explicit_layer.d
command -v nvcc >/dev/null || { [ -x /usr/local/cuda/bin/nvcc ] && export PATH=$PATH:/usr/local/cuda/bin; }

# The NVIDIA Vulkan driver's manifest (the image may keep it outside the
# loader's default folders).
icd=""
for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd*.json /etc/vulkan/icd.d/nvidia_icd*.json \
    /usr/share/vulkan/icd.d/nvidia_icd*.json /usr/local/nvidia/icd.d/nvidia_icd*.json; do
    [ -f "$f" ] && { icd=$f; break; }
done
[ -n "$icd" ] && export VK_DRIVER_FILES=$icd VK_ICD_FILENAMES=$icd

# ---- the card ----------------------------------------------------------------
gpu=0
cc=""
if command -v nvidia-smi >/dev/null && cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n1 | tr -d ' ') && [ -n "$cc" ]; then
    gpu=1
fi
case $cc in
9.0) arch=90a ;;
10.0) arch=100a ;;
12.0) arch=120a ;;
12.1) arch=121a ;;
"") arch=${FP4RT_GPU_ARCH:-90a} ;;
*) arch=${cc/./} ;;
esac

# ---- the plan: every step's limit, in order of value ---------------------------
# (the limits of the correctness group fit the default budget with the build
# at its limit; what follows runs in the time the build and tests leave)
declare -A LIMIT=(
    [env]=15 [configure]=45 [build]=200 [devices]=15 [ctest-cuda]=115 [ctest-cuda-rerun]=60
    [spec-cuda]=60 [spec-cuda-rerun]=40 [bench-spec]=30
    [vk-ops]=45 [vk-model]=45 [vk-parity]=60
    [bandwidth]=15 [bench-ctx1]=45 [vk-bench]=45 [bench-ctx8192]=60
    [bench-prefill4096]=45 [vk-prefill]=45 [fp4-bench]=30 [linear-bench]=30 [vk-coop-khr]=30 [vk-linear-prefill]=30
    [vision-bench]=60
)
ORDER=(env configure build devices ctest-cuda spec-cuda vk-ops vk-model vk-parity
    bandwidth bench-ctx1 vk-bench bench-ctx8192 bench-spec
    bench-prefill4096 vk-prefill fp4-bench linear-bench vk-coop-khr vk-linear-prefill vision-bench)
echo "== plan: budget ${budget} s; steps in order of value, limit and end if each took its limit"
cum=0
for n in "${ORDER[@]}"; do
    cum=$((cum + LIMIT[$n]))
    printf '   %-18s %4d s  ends by %4d s%s\n' "$n" "${LIMIT[$n]}" "$cum" "$([ $cum -gt "$budget" ] && echo '  (after the budget if all run long)')"
done

step env "${LIMIT[env]}" "
echo 'gpu: $( [ $gpu = 1 ] && nvidia-smi --query-gpu=name --format=csv,noheader | head -n1 || echo none) (compute capability ${cc:-none}, building sm_$arch)'
if [ $gpu = 1 ]; then
  nvidia-smi --query-gpu=name,compute_cap,memory.total,driver_version,clocks.max.sm,clocks.max.mem,clocks.sm,clocks.mem,power.limit,temperature.gpu,pstate --format=csv
  nvidia-smi
else echo 'no GPU: nvidia-smi missing or found no device'; fi
uname -srm; nproc; free -g | head -n2
nvcc --version | tail -n2; cmake --version | head -n1; ninja --version 2>&1 | head -n1; gcc --version | head -n1
echo \"pkg-config: \$(command -v pkg-config) glslc: \$(command -v glslc)\"
echo \"Vulkan loader (ldconfig):\"; ldconfig -p | grep libvulkan || echo '  none in the system'
ls -l $ML/libvulkan.so.1 2>&1
echo \"NVIDIA ICD: ${icd:-none found}\"
if [ -n '$icd' ]; then
  cat '$icd'
  # the driver library the manifest names, and whether every library it needs resolves
  lib=\$(grep -oE '\"library_path\" *: *\"[^\"]+\"' '$icd' | sed -E 's/.*: *\"([^\"]+)\"/\1/')
  echo \"ICD library: \${lib:-none named}\"
  if [ -n \"\$lib\" ]; then
    path=\$lib
    case \$lib in /*) ;; *) path=\$(ldconfig -p | grep -m1 -F \"\$lib\" | sed 's/.*=> //') ;; esac
    if [ -n \"\$path\" ] && [ -f \"\$path\" ]; then
      missing=\$(ldd \"\$path\" 2>&1 | grep 'not found')
      if [ -n \"\$missing\" ]; then echo \"ICD libraries NOT FOUND (the NVIDIA Vulkan device will be missing):\"; echo \"\$missing\"
      else echo 'ICD libraries: all resolved'; fi
    else echo \"ICD library \$lib: not found on this machine\"; fi
  fi
fi
echo \"validation layer: \${VK_LAYER_PATH:-none}\"
true
"

# ---- configure and build -------------------------------------------------------
gen=""
command -v ninja >/dev/null && gen="-G Ninja"
step configure "${LIMIT[configure]}" "
# (an existing build-gpu is reused: a rerun on a warm machine builds only what changed)
cmake -S . -B '$bld' $gen -DCMAKE_BUILD_TYPE=Release -DFP4RT_CUDA=ON -DFP4RT_CUDA_ARCHS='$arch' -DFP4RT_CUDA_PTX= \
  -DFP4RT_CU_TEST_ARCHS='$arch'
"
step build "${LIMIT[build]}" "echo 'arch sm_$arch, $jobs jobs'; cmake --build '$bld' -j$jobs"
built=0
[ -x "$bld/fp4rt" ] && built=1

bw_tool=$work/cu_bandwidth
(nvcc -O2 -std=c++17 -gencode "arch=compute_$arch,code=sm_$arch" -I. -Iinclude tools/cu_bandwidth.cu -o "$bw_tool" \
    >"$work/bw_build.log" 2>&1) &
bw_pid=$!

# ---- correctness: CUDA, then Vulkan on the NVIDIA card ------------------------------
if [ $built = 1 ]; then
    step devices "${LIMIT[devices]}" "'$bld/fp4rt' devices"
    spec_tests='^test_(verify|verify_kjv|verify_nvfp4_w4a4|speculate|speculate_nvidia_mixed)_cuda$'
    step ctest-cuda "${LIMIT[ctest-cuda]}" "ctest --test-dir '$bld' -L cuda -E 'test_cu_fp4_sass_check|$spec_tests' --output-on-failure --timeout 110"
    if grep -qE '^[[:space:]]*[0-9]+ - .*\((Failed|Timeout|SEGFAULT|Subprocess aborted|Child aborted)' "$OUT/ctest-cuda.log" 2>/dev/null; then
        # the failing tests again, each kernel launch synchronous and no graphs:
        # the first error then names the kernel that failed
        step ctest-cuda-rerun "${LIMIT[ctest-cuda-rerun]}" "CUDA_LAUNCH_BLOCKING=1 FP4RT_CUDA_GRAPHS=0 ctest --test-dir '$bld' --rerun-failed --output-on-failure --timeout 55"
    fi
    # speculative decoding: the verify step (decode_rows) and greedy spec == plain
    step spec-cuda "${LIMIT[spec-cuda]}" "ctest --test-dir '$bld' -R '$spec_tests' --output-on-failure --timeout 55"
    if grep -qE '^[[:space:]]*[0-9]+ - .*\((Failed|Timeout|SEGFAULT|Subprocess aborted|Child aborted)' "$OUT/spec-cuda.log" 2>/dev/null; then
        # without graphs, launches synchronous: a capture problem or the failing kernel shows
        step spec-cuda-rerun "${LIMIT[spec-cuda-rerun]}" "CUDA_LAUNCH_BLOCKING=1 FP4RT_CUDA_GRAPHS=0 ctest --test-dir '$bld' --rerun-failed --output-on-failure --timeout 35"
    fi
else
    skip devices "build failed"
    skip ctest-cuda "build failed"
    skip spec-cuda "build failed"
fi

vkdev=""
[ -f "$OUT/devices.log" ] && vkdev=$(grep -m1 -E '^vulkan:[0-9]+ +.*NVIDIA' "$OUT/devices.log" | cut -d' ' -f1)
vkdev=${FP4RT_GPU_VK_DEVICE:-$vkdev} # (another device, e.g. to try these steps on lavapipe)
vk_env="FP4RT_TEST_VK_DEVICE=$vkdev FP4RT_CACHE_DIR='$bld/pipeline-cache'"
# the layer steps use the NV cooperative-matrix kind: Debian 12's validation
# layer predates VK_KHR_cooperative_matrix and reports the rewritten KHR SPIR-V
# as invalid (the KHR kind runs in vk-coop-khr, without the layer)
[ -n "${VK_LAYER_PATH:-}" ] && [ "${FP4RT_GPU_VK_VALIDATION:-1}" != 0 ] &&
    vk_env="$vk_env VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation"
vk_coop=""
[ -n "$vkdev" ] && [ -f "$OUT/devices.log" ] &&
    vk_coop=$(awk -v d="$vkdev" '$1 == d { f = 1; next } /^[a-z]/ { f = 0 } f && /cooperative matrix/' "$OUT/devices.log")
case $vk_coop in
*"cooperative matrix "*NV*) vk_env="$vk_env FP4RT_VK_COOPMAT=nv" ;;
*"cooperative matrix KHR"*) vk_env="$vk_env FP4RT_VK_COOPMAT=0" ;; # KHR only: not under this layer
esac
vk_why=""
if [ -z "$vkdev" ]; then
    vk_why="no NVIDIA Vulkan device in fp4rt devices"
    [ -f "$OUT/devices.log" ] && vk_why="$vk_why ($(grep -m1 '^vulkan' "$OUT/devices.log" | tr -s ' ' | cut -c1-60))"
elif [ ! -x "$bld/tests/test_backend_ops" ]; then
    vk_why="Vulkan backend not in this build"
fi
# vk_step NAME 'COMMAND': a Vulkan step, or skipped with the reason
vk_step() { if [ -n "$vk_why" ]; then skip "$1" "$vk_why"; else step "$1" "${LIMIT[$1]}" "$2"; fi; }
vk_step vk-ops "env $vk_env '$bld/tests/test_backend_ops' -b vulkan"
vk_step vk-model "env $vk_env '$bld/tests/test_device_model_vulkan'"
# the 16-layer preset (4 attention + 12 GDN layers), prompts 1..600
vk_step vk-parity "env $vk_env '$bld/tests/test_vk_parity' small nvidia-mixed 1,17,64,600 32"

# ---- the 27B decode bandwidth figures ------------------------------------------------
wait $bw_pid
if [ -x "$bw_tool" ]; then
    step bandwidth "${LIMIT[bandwidth]}" "'$bw_tool' 2048"
else
    skip bandwidth "tools/cu_bandwidth.cu did not build: $(tail -n1 "$work/bw_build.log" | cut -c1-60)"
fi
has_synth=0
[ $built = 1 ] && "$bld/fp4rt" bench --help 2>&1 | grep -q -- '--synthetic' && has_synth=1
bench() { # NAME DEVICE ARGS...
    local name=$1 dev=$2
    shift 2
    if [ $gpu = 0 ]; then skip "$name" "no GPU"
    elif [ $has_synth = 0 ]; then skip "$name" "fp4rt bench has no --synthetic in this build"
    else step "$name" "${LIMIT[$name]}" "'$bld/fp4rt' bench --synthetic qwen3.6-27b --device $dev $*"; fi
}
vk_bench() { if [ -n "$vk_why" ]; then skip "$1" "$vk_why"; else bench "$@"; fi; }
bench bench-ctx1 cuda:0 --prompt 1 --gen 64
vk_bench vk-bench "$vkdev" --prompt 1 --gen 32
bench bench-ctx8192 cuda:0 --prompt 8192 --gen 32
# speculative decoding with the MTP head of the trained 10 M model (greedy, K = 3)
if [ $gpu = 0 ]; then skip bench-spec "no GPU"
elif [ $built = 0 ]; then skip bench-spec "build failed"
else step bench-spec "${LIMIT[bench-spec]}" "'$bld/fp4rt' bench --model models/qwen35-kjv-10m --device cuda:0 --prompt 64 --gen 128 --spec 3"; fi

# ---- prefill and kernels ---------------------------------------------------------------
bench bench-prefill4096 cuda:0 --prompt 4096 --gen 4
# FP8 / W4A4 linears on the cooperative-matrix kernel where the driver has
# VK_KHR / VK_NV_cooperative_matrix (fp4rt devices says which)
vk_bench vk-prefill "$vkdev" --prompt 512 --gen 1
if [ $built = 1 ] && [ -x "$bld/tests/test_cu_fp4_device" ]; then
    step fp4-bench "${LIMIT[fp4-bench]}" "FP4RT_BENCH=1 '$bld/tests/test_cu_fp4_device'"
else
    skip fp4-bench "test_cu_fp4_device not built"
fi
if [ $built = 1 ] && [ -x "$bld/tests/test_cu_linear_gpu" ]; then
    step linear-bench "${LIMIT[linear-bench]}" "'$bld/tests/test_cu_linear_gpu' bench"
else
    skip linear-bench "test_cu_linear_gpu not built"
fi
vk_step vk-coop-khr "env FP4RT_CACHE_DIR='$bld/pipeline-cache' FP4RT_VK_COOPMAT=khr '$bld/tests/test_backend_ops' coop -b vulkan"
if [ $gpu = 0 ]; then
    skip vk-linear-prefill "no GPU"
elif [ -z "$vk_why" ] && [ ! -x "$bld/bench/vk_linear_bench" ]; then
    skip vk-linear-prefill "vk_linear_bench not built"
else
    vk_step vk-linear-prefill "'$bld/bench/vk_linear_bench' ${vkdev#vulkan:} prefill"
fi
# the 27B's vision tower (synthetic BF16) on a 157 x 101 test image: 280 patches
bench vision-bench cuda:0 --prompt 1 --gen 1 --image tests/fixtures/images/big.png
wait 2>/dev/null

# ---- the table -----------------------------------------------------------------
{
    echo "fp4rt gpu-check, $(date -u '+%Y-%m-%d %H:%M UTC'), git $(git rev-parse --short HEAD 2>/dev/null || echo '?'), sm_$arch, $(elapsed) s"
    printf '%-18s %-9s %5s  %s\n' step status s key
    for s in "${steps[@]}"; do
        IFS=$'\x1f' read -r st dt k <"$work/rec/$s" || { st="?"; dt="-"; k=""; }
        printf '%-18s %-9s %5s  %s\n' "$s" "$st" "$dt" "$k"
    done
} >"$OUT/summary.txt"
# one file for all logs (the device tool returns at most 8 files)
for s in "${steps[@]}"; do
    [ -f "$OUT/$s.log" ] || continue
    printf '\n======== %s ========\n' "$s"
    cat "$OUT/$s.log"
done >"$OUT/all-logs.txt"
for s in "${steps[@]}"; do rm -f "$OUT/$s.log"; done
rm -rf "$work"
echo
cat "$OUT/summary.txt"
