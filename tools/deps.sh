# SPDX-License-Identifier: LGPL-2.1-or-later
#
# deps.sh — what building and testing iops-glib needs on a Debian machine.
# Sourced by run-demo.sh and run-tests.sh; add new packages here only.

# Compiler, build system, GLib, and GObject-Introspection (on by default).
IOPS_BUILD_DEPS=(
  gcc libc6-dev
  pkg-config meson ninja-build
  libglib2.0-dev
  gobject-introspection libgirepository1.0-dev gir1.2-glib-2.0
)

# The binding tests, valgrind, and the run-time libraries of gcc's
# AddressSanitizer and UndefinedBehaviorSanitizer.
IOPS_TEST_DEPS=(
  python3-gi gjs
  valgrind
  libasan8 libubsan1
  gi-docgen valac
  libgtk-4-dev xvfb gir1.2-gdkpixbuf-2.0
  clang libclang-rt-14-dev
  memcached
)

# The bridges (bridges/<name>/): each client library, and the real server
# its tests and benchmark talk to.
IOPS_BRIDGE_DEPS=(
  libhiredis-dev redis-server
  libcurl4-openssl-dev lighttpd
  libc-ares-dev dnsmasq-base
  libmosquitto-dev mosquitto
)

# The peers the benchmarks compare with (their smoke test runs in the
# suite); gnuplot only draws the charts of a full benchmark run. uvloop is
# a peer of the Python benchmarks (bench/python/).
IOPS_BENCH_DEPS=(
  libev-dev libevent-dev libuv1-dev libverto-dev libverto-glib1
  python3-uvloop
)

# Prints the packages among "$@" that are not installed.
iops_missing_packages ()
{
  local pkg status
  for pkg in "$@"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ $status == "install ok installed" ]] || echo "$pkg"
  done
}

# Installs the packages among "$@" that are missing: apt-get update once,
# then one apt-get install. Needs root, or sudo.
iops_ensure_packages ()
{
  local -a missing sudo=()

  if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "Not a Debian system: install the equivalent of: $*" >&2
    return 0
  fi
  mapfile -t missing < <(iops_missing_packages "$@")
  (( ${#missing[@]} > 0 )) || return 0

  echo "Installing missing packages: ${missing[*]}"
  if (( EUID != 0 )); then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo)
    else
      echo "error: not root and no sudo. As root, run:" >&2
      echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
      return 1
    fi
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}" || return 1
  # meson keeps the result of every header and library check across
  # reconfigurations: a build configured before these packages came must
  # start afresh to see them (see iops_meson_setup).
  IOPS_PACKAGES_INSTALLED=1
}

# iops_meson_setup DIR [OPTION...]: configures DIR, reusing an existing
# configuration (with the given options applied) or starting afresh when
# that fails, e.g. after a meson upgrade, or when packages were just
# installed.
iops_meson_setup ()
{
  local dir=$1
  shift
  if [[ -f $dir/meson-private/coredata.dat && -n ${IOPS_PACKAGES_INSTALLED:-} ]]; then
    meson setup --wipe "$dir" "$@"
  elif [[ -f $dir/meson-private/coredata.dat ]]; then
    meson setup --reconfigure "$dir" "$@" || meson setup --wipe "$dir" "$@"
  else
    meson setup "$dir" "$@"
  fi
}
