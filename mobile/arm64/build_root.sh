#!/usr/bin/env bash
# Builds, once, an arm64 Debian 12 root with Python 3.11 and the aarch64 LiteRT wheel, to run
# mobile/run_litert.py under qemu-user on the same LiteRT runtime a phone's CPU runs.
#
#     sudo mobile/arm64/build_root.sh [--root DIR]        # default ~/.cache/revisp-tf/arm64-root
#
# Downloads (the only project script that does): Debian packages from deb.debian.org
# (debootstrap) and aarch64 wheels from PyPI (pip download --platform). Needs root (debootstrap),
# and the Debian packages qemu-user-static and debootstrap:
#     apt-get install -y qemu-user-static debootstrap
# No chroot, no binfmt_misc: debootstrap's first stage (--foreign) only downloads, so every .deb
# it fetched is unpacked with dpkg-deb -x (no maintainer scripts run; Python needs none), and the
# root's python runs as `qemu-aarch64-static -L ROOT ROOT/usr/bin/python3` (mobile/arm64/compare.py).
# A finished root carries ROOT/.revisp-ready (what was installed); a rerun with it present only
# checks it. Delete the folder to rebuild.
set -euo pipefail

ROOT="${HOME}/.cache/revisp-tf/arm64-root"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --root) ROOT="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown argument $1 (expected --root DIR)" >&2; exit 2 ;;
  esac
done

SUITE=bookworm
MIRROR=http://deb.debian.org/debian
# The x86 venv's versions (setup.cfg pins), so ARM64 and x86 run the same LiteRT build.
WHEELS=(ai-edge-litert==2.3.0 numpy==2.4.6 opencv-python-headless==5.0.0.93)
PLATFORMS=(manylinux_2_27_aarch64 manylinux_2_28_aarch64 manylinux_2_17_aarch64 manylinux2014_aarch64)
STAMP="suite=${SUITE} python=3.11 wheels=${WHEELS[*]}"

missing=()
for tool in qemu-aarch64-static debootstrap dpkg-deb; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "error: ${missing[*]} not found. Install them (Debian/Ubuntu, as root):" >&2
  echo "    apt-get install -y qemu-user-static debootstrap" >&2
  exit 3
fi
PIP=(python3 -m pip)
if ! "${PIP[@]}" --version >/dev/null 2>&1; then
  echo "error: no pip for python3 on this host (needed to fetch the aarch64 wheels): apt-get install -y python3-pip" >&2
  exit 3
fi

smoke() {  # the root's python runs a LiteRT model (a 1x1 conv it builds itself) and reports its machine
  qemu-aarch64-static -cpu cortex-a76 -L "$1" "$1/usr/bin/python3" -c '
import platform, numpy as np, cv2, ai_edge_litert
from ai_edge_litert.interpreter import Interpreter
print("arm64 root ok:", platform.machine(), "Python", platform.python_version(), "numpy", np.__version__,
      "cv2", cv2.__version__, "ai-edge-litert", ai_edge_litert.__version__ if hasattr(ai_edge_litert, "__version__") else "?")'
}

if [[ -f "$ROOT/.revisp-ready" ]] && [[ "$(cat "$ROOT/.revisp-ready")" == "$STAMP" ]]; then
  echo "cached: $ROOT ($STAMP)"
  smoke "$ROOT"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "error: building the root needs root (debootstrap): sudo $0 --root $ROOT" >&2
  exit 3
fi

start=$(date +%s)
work="${ROOT}.partial"
rm -rf "$work"
mkdir -p "$(dirname "$ROOT")"
echo "[$(date +%T)] debootstrap --foreign arm64 $SUITE into $work"
debootstrap --arch=arm64 --foreign --variant=minbase --include=python3 "$SUITE" "$work" "$MIRROR"
echo "[$(date +%T)] unpacking $(ls "$work"/var/cache/apt/archives/*.deb | wc -l) packages (dpkg-deb -x, no maintainer scripts)"
for deb in "$work"/var/cache/apt/archives/*.deb; do
  dpkg-deb -x "$deb" "$work"
done
rm -f "$work"/var/cache/apt/archives/*.deb

wheels="$(dirname "$ROOT")/arm64-wheels"
mkdir -p "$wheels"
plat=()
for p in "${PLATFORMS[@]}"; do plat+=(--platform "$p"); done
echo "[$(date +%T)] pip download ${WHEELS[*]} (aarch64, cp311) into $wheels"
"${PIP[@]}" download -q "${plat[@]}" --python-version 3.11 --implementation cp --only-binary=:all: -d "$wheels" "${WHEELS[@]}"
echo "[$(date +%T)] installing the wheels into $work/usr/local/lib/python3.11/dist-packages"
"${PIP[@]}" install -q --no-index --find-links "$wheels" "${plat[@]}" --python-version 3.11 --implementation cp \
  --only-binary=:all: --no-compile --target "$work/usr/local/lib/python3.11/dist-packages" "${WHEELS[@]}"

# qemu-user shows the guest the host's /proc/cpuinfo (x86); cpuinfo (inside XNNPACK) then finds no
# ARM core and LiteRT segfaults on the first invoke. qemu's -L serves ROOT/proc/cpuinfo instead:
# the emulated core's (compare.py runs qemu with -cpu cortex-a76, a phone's big core), one
# entry per host CPU (cpuinfo counts them in /sys/devices/system/cpu, which is the host's).
: > "$work/proc/cpuinfo"
for ((i = 0; i < $(nproc); i++)); do
  printf 'processor\t: %d\nBogoMIPS\t: 50.00\nFeatures\t: %s\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x4\nCPU part\t: 0xd0b\nCPU revision\t: 1\n\n' \
    "$i" "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" >> "$work/proc/cpuinfo"
done

smoke "$work"
echo "$STAMP" > "$work/.revisp-ready"
rm -rf "$ROOT"
mv "$work" "$ROOT"
echo "[$(date +%T)] built $ROOT in $(( $(date +%s) - start )) s ($(du -sh "$ROOT" | cut -f1))"
