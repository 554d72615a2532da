#!/bin/sh
# install-deps.sh — install the Debian packages quantbench builds and tests with, if missing.
# Used by `make run`, `make test` and .ci/run (MPI=1 or CI=true: Open MPI too). Needs root (or sudo) only when something is missing.
set -e
PKGS="build-essential pkg-config libncurses-dev libreadline-dev liblua5.4-dev libcairo2-dev fonts-dejavu-core libpcre2-dev libjansson-dev libunistring-dev libcmocka-dev tmux"
# Open MPI for build/quantbench-mpi and tests/cli/test-mpi.sh: asked for (MPI=1, `make MPI=1
# test`) or in CI (CI=true, .ci/run), where it adds about half a minute of packages and as much
# of test; elsewhere the MPI test reports a skip.
if [ "${MPI:-0}" = 1 ] || [ "${CI:-}" = true ]; then PKGS="$PKGS libopenmpi-dev openmpi-bin"; fi
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "install-deps: installing:$missing" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
# a failed update (no network) is not the end: the package lists or cached .debs may do
$SUDO apt-get update -qq >&2 || echo "install-deps: apt-get update failed; installing from the lists already here" >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >&2
