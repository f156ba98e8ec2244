#!/usr/bin/env bash
# Installs the built SDK into a temporary prefix and builds a user's program
# against it twice: with find_package(sla2) and with pkg-config sla2.
set -euo pipefail
build_dir=$1 source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
cmake -S "$source_dir/tests/install" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/consumer" >/dev/null
"$work/consumer/consumer"
libdir=$(ls -d "$work"/prefix/lib*/pkgconfig | head -1)
export PKG_CONFIG_PATH=$libdir
cc -o "$work/consumer_pc" "$source_dir/tests/install/consumer.c" $(pkg-config --cflags --libs sla2) \
   -Wl,-rpath,"$(pkg-config --variable=libdir sla2)"
"$work/consumer_pc"
echo "find_package(sla2) and pkg-config sla2: both consumers built and ran"
