#!/usr/bin/env bash
# Packs what sla2-preview's build needs beyond the GPU machine's image (CUDA,
# CMake, gcc, pkg-config) into the git-ignored folder .sdl/, to carry there:
# Debian's SDL2 and SDL2_ttf with their headers, relocatable pkg-config files
# and every shared library they load (the ldd closure, less glibc and the
# compiler's runtime, which the machine has), the DejaVu Sans Mono font, and
# the SDK's own libraries in case .blas/ and .ditdeps/ are not carried beside
# it: libyaml, libpng and a BLAS (Debian's netlib libblas3: CBLAS in 0.4 MB;
# OpenBLAS's 37 MB would break the 64 MiB a device call carries, and the
# preview on CUDA runs no BLAS on the CPU). Also pkgconf, for a machine
# without pkg-config.
#
# usage: tools/pack-device-libs.sh [DEST]   (default: .sdl in the repository)
# Needs (Debian): libsdl2-dev libsdl2-ttf-dev fonts-dejavu-core libyaml-dev
# libpng-dev libblas-dev pkgconf. tests/preview/run_preview_gpu.sh uses it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST=${1:-$ROOT/.sdl}
MULTIARCH=$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
LIBDIR=/usr/lib/$MULTIARCH
FONT=/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf
LIMIT_BYTES=$((25 * 1024 * 1024))

need() { [ -e "$1" ] || { echo "pack-device-libs: $1 not found (Debian: apt-get install $2)" >&2; exit 1; }; }
need "$LIBDIR/libSDL2-2.0.so.0" libsdl2-dev
need "$LIBDIR/libSDL2_ttf-2.0.so.0" libsdl2-ttf-dev
need /usr/include/SDL2/SDL.h libsdl2-dev
need /usr/include/SDL2/SDL_ttf.h libsdl2-ttf-dev
need "$FONT" fonts-dejavu-core
need "$LIBDIR/libyaml-0.so.2" libyaml-dev
need /usr/include/yaml.h libyaml-dev
need /usr/include/libpng16/png.h libpng-dev
need "$LIBDIR/blas/libblas.so.3" libblas-dev
need "/usr/include/$MULTIARCH/cblas-netlib.h" libblas-dev
need /usr/bin/pkgconf pkgconf

rm -rf "$DEST"
mkdir -p "$DEST"/{lib/pkgconfig,include/SDL2,fonts,bin,blas/lib,blas/include,yaml/lib,yaml/include,yaml/pkgconfig,png/lib,png/include}
grep -qx '/.sdl/' "$ROOT/.git/info/exclude" 2>/dev/null || echo '/.sdl/' >>"$ROOT/.git/info/exclude"

# The libraries, under their sonames; glibc's and the compiler runtime's stay behind.
system_lib='/(libc|libm|libpthread|libdl|librt|libresolv|libutil|ld-linux[^/]*|libstdc\+\+|libgcc_s)\.so'
copy_closure() { # destination, then libraries
  local dest=$1; shift
  for lib in "$@"; do
    cp -L "$lib" "$dest/$(basename "$lib")"
    ldd "$lib" | awk '/=> \// { print $1, $3 }' | while read -r soname path; do
      grep -qE "$system_lib" <<<"/$soname" || [ -e "$dest/$soname" ] || cp -L "$path" "$dest/$soname"
    done
  done
}
copy_closure "$DEST/lib" "$LIBDIR/libSDL2-2.0.so.0" "$LIBDIR/libSDL2_ttf-2.0.so.0"
ln -s libSDL2-2.0.so.0 "$DEST/lib/libSDL2.so"
ln -s libSDL2_ttf-2.0.so.0 "$DEST/lib/libSDL2_ttf.so"

# Headers: SDL.h's (the OpenGL extension headers, which it does not include, are left out).
cp /usr/include/SDL2/*.h "$DEST/include/SDL2/"
rm -f "$DEST"/include/SDL2/SDL_opengl_glext.h "$DEST"/include/SDL2/SDL_opengles2_gl2ext.h \
  "$DEST"/include/SDL2/SDL_test*.h
# Debian's SDL_config.h includes <SDL2/_real_SDL_config.h> from the multiarch folder.
cp "/usr/include/$MULTIARCH/SDL2/_real_SDL_config.h" "$DEST/include/SDL2/"

sdl_version=$(pkg-config --modversion sdl2) ttf_version=$(pkg-config --modversion SDL2_ttf)
cat >"$DEST/lib/pkgconfig/sdl2.pc" <<EOF
prefix=\${pcfiledir}/../..
libdir=\${prefix}/lib
includedir=\${prefix}/include
Name: sdl2
Description: Simple DirectMedia Layer (Debian's, carried by tools/pack-device-libs.sh)
Version: $sdl_version
Libs: -L\${libdir} -lSDL2
Cflags: -I\${includedir} -I\${includedir}/SDL2 -D_REENTRANT
EOF
cat >"$DEST/lib/pkgconfig/SDL2_ttf.pc" <<EOF
prefix=\${pcfiledir}/../..
libdir=\${prefix}/lib
includedir=\${prefix}/include
Name: SDL2_ttf
Description: TrueType fonts for SDL (Debian's, carried by tools/pack-device-libs.sh)
Version: $ttf_version
Requires: sdl2
Libs: -L\${libdir} -lSDL2_ttf
Cflags: -I\${includedir}/SDL2
EOF
cp "$FONT" "$DEST/fonts/"

# The SDK's dependencies, laid out as .blas/ and .ditdeps/png/ are.
cp -L "$LIBDIR/blas/libblas.so.3" "$DEST/blas/lib/"
ln -s libblas.so.3 "$DEST/blas/lib/libblas.so"
cp "/usr/include/$MULTIARCH/cblas-netlib.h" "$DEST/blas/include/cblas.h"
cp "/usr/include/$MULTIARCH/cblas_mangling.h" "$DEST/blas/include/" 2>/dev/null ||
  cp /usr/include/cblas_mangling.h "$DEST/blas/include/"
cp -L "$LIBDIR/libyaml-0.so.2" "$DEST/yaml/lib/"
ln -s libyaml-0.so.2 "$DEST/yaml/lib/libyaml.so"
cp /usr/include/yaml.h "$DEST/yaml/include/"
cat >"$DEST/yaml/pkgconfig/yaml-0.1.pc" <<EOF
prefix=\${pcfiledir}/..
libdir=\${prefix}/lib
includedir=\${prefix}/include
Name: LibYAML
Description: Library to parse and emit YAML (carried by tools/pack-device-libs.sh)
Version: $(pkg-config --modversion yaml-0.1)
Libs: -L\${libdir} -lyaml
Cflags: -I\${includedir}
EOF
cp -L "$LIBDIR/libpng16.so.16" "$DEST/png/lib/"
ln -s libpng16.so.16 "$DEST/png/lib/libpng16.so"
cp /usr/include/libpng16/{png.h,pngconf.h,pnglibconf.h} "$DEST/png/include/"
cp -L /usr/bin/pkgconf "$DEST/bin/pkg-config"
copy_closure "$DEST/lib" /usr/bin/pkgconf
rm -f "$DEST/lib/pkgconf"

# Every library must load from here alone (plus glibc): no "not found".
missing=$(for f in "$DEST"/lib/*.so* "$DEST"/bin/pkg-config; do
  LD_LIBRARY_PATH=$DEST/lib ldd "$f" | { grep "not found" || true; } | sed "s|^|$(basename "$f"): |"; done | sort -u)
[ -z "$missing" ] || { echo "pack-device-libs: unresolved: $missing" >&2; exit 1; }

bytes=$(du -sb "$DEST" | cut -f1)
glibc=$(for f in "$DEST"/lib/*.so* "$DEST"/blas/lib/* "$DEST"/yaml/lib/* "$DEST"/png/lib/*; do
  objdump -T "$f" 2>/dev/null | grep -o 'GLIBC_2\.[0-9]*'; done | sort -t. -k2 -n -u | tail -n 1)
printf 'pack-device-libs: %s: %d libraries, %.1f MiB; SDL2 %s, SDL2_ttf %s; needs %s or newer\n' "$DEST" \
  "$(ls "$DEST"/lib/*.so* | wc -l)" "$(awk -v b="$bytes" 'BEGIN { print b / 1048576 }')" "$sdl_version" "$ttf_version" "$glibc"
[ "$bytes" -le $LIMIT_BYTES ] || { echo "pack-device-libs: over the 25 MiB budget" >&2; exit 1; }
