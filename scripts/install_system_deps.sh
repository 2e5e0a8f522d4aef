#!/usr/bin/env bash
# System packages the project needs (Debian/Ubuntu): installed only when missing.
#   ffmpeg, espeak-ng, sox, fonts-dejavu-core: tests and the demo make their own media (speech with
#     known words, frames with known captions, cuts at known times); PyAV bundles its own FFmpeg
#     libraries, so the pipeline itself needs no system ffmpeg.
#   chromium: the web page's browser tests (Playwright drives the system browser).
set -euo pipefail
packages=(ffmpeg espeak-ng sox fonts-dejavu-core chromium)
missing=()
for pkg in "${packages[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing system packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
