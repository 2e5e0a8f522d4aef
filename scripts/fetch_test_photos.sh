#!/usr/bin/env bash
# Photos with known content for the visual-label tests: Debian's darknet package ships a dog,
# horses, a giraffe, an eagle, a person, a kite. Only its data is wanted, so the package is
# downloaded and unpacked (no root, none of its OpenCV dependencies installed).
set -euo pipefail
target="${1:-.test-photos}"
if compgen -G "$target/dog.jpg" >/dev/null; then exit 0; fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
# The package lists may be empty on a fresh machine: refresh them once when the download fails.
(cd "$work" && { apt-get download darknet >/dev/null 2>&1 || { $SUDO apt-get update -qq && apt-get download darknet; }; })
dpkg -x "$work"/darknet_*.deb "$work/root"
mkdir -p "$target"
cp "$work"/root/usr/share/darknet/data/{dog,horses,giraffe,eagle,person,kite}.jpg "$target/"
cp "$work"/root/usr/share/doc/darknet/copyright "$target/COPYRIGHT-darknet" 2>/dev/null || true
echo "test photos in $target"
