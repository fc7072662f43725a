#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# run-demo.sh — installs what is missing, builds, and runs the echo demo:
# a TCP echo server and 100 clients on 127.0.0.1, all driven through the
# IopsIOPS interface. Arguments are passed on to the demo (try --help).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source tools/deps.sh

iops_ensure_packages "${IOPS_BUILD_DEPS[@]}"
iops_meson_setup build
meson compile -C build

exec ./build/examples/iops-echo-demo "$@"
