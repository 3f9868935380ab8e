#!/usr/bin/env bash
# Downloads (does not install) the Debian 12 packages the GPU device machine
# lacks, into .gpu-deps/ (git-ignored), so they can travel with the working tree
# (`run(..., carry=[".gpu-deps"])`) and be unpacked there by tests/gpu-check.sh
# into a private prefix. The device machine has nvcc, cmake, ninja, gcc and the
# NVIDIA driver but no network: everything else fp4rt needs to configure, build
# and run its tests (cJSON, PCRE2, utf8proc, pkg-config, the Vulkan loader and
# headers, volk, glslc, the Khronos validation layer) comes from here.
# Runs on Debian 12 (amd64 packages, whatever this machine's architecture) with
# access to Debian's mirror. Usage: tests/gpu-deps.sh   (from anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.gpu-deps
limit_mib=40 # the whole carried tree may be 64 MiB; keep well under it

PKGS=(
    libcjson1 libcjson-dev
    libpcre2-8-0 libpcre2-dev
    libutf8proc2 libutf8proc-dev
    pkgconf pkgconf-bin libpkgconf3
    libvulkan1 libvulkan-dev libvulkan-volk-dev
    glslc libshaderc1
    vulkan-validationlayers
    libglvnd0
)
# (libglvnd0: NVIDIA's Vulkan driver links libGLX / libEGL dispatch through it;
# a bare device image may lack it, and then the ICD does not load)

lists=/tmp/fp4rt-gpu-deps-lists
mkdir -p "$lists/partial" "$dest"
o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists="$lists")
apt-get "${o[@]}" update -qq
rm -f "$dest"/*.deb
(cd "$dest" && apt-get "${o[@]}" download "${PKGS[@]}")
n=$(ls "$dest"/*.deb | wc -l)
[ "$n" -eq "${#PKGS[@]}" ] || { echo "gpu-deps: expected ${#PKGS[@]} .deb, got $n" >&2; exit 1; }
kib=$(du -sk "$dest" | cut -f1)
echo "gpu-deps: $n packages, $((kib / 1024)) MiB in $dest/"
if [ "$kib" -gt $((limit_mib * 1024)) ]; then
    echo "gpu-deps: $dest is over ${limit_mib} MiB (the carried tree may be 64 MiB in all)" >&2
    exit 1
fi
