#!/usr/bin/env bash
# Debian packages the tests use: Xvfb (X11 captures), sway + grim (Wayland captures), Chromium (browser
# tests). As root they are installed; otherwise the exact command is printed.
set -euo pipefail
declare -A needs=([Xvfb]=xvfb [xauth]=xauth [sway]=sway [swaymsg]=sway [grim]=grim [chromium]=chromium [xrandr]=x11-xserver-utils [dbus-daemon]=dbus-daemon [setpriv]=util-linux)
missing=()
for command in "${!needs[@]}"; do
  command -v "$command" >/dev/null 2>&1 || missing+=("${needs[$command]}")
done
fc-list 2>/dev/null | grep -qi dejavu || missing+=(fonts-dejavu-core)
ldconfig -p 2>/dev/null | grep -q libXtst.so.6 || missing+=(libxtst6)
[ ${#missing[@]} -eq 0 ] && exit 0
packages=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing system packages: $packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $packages >/dev/null
else
  echo "missing system packages; run: sudo apt-get install -y $packages" >&2
  exit 1
fi
