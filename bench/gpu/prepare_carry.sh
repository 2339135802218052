#!/usr/bin/env bash
# Packs what the GPU machine may lack to build icl: the headers, shared
# libraries and pkg-config files of Lua 5.4, OpenBLAS, libyaml and PLplot,
# plus the lua5.4 interpreter and pkg-config, from THIS machine (Debian
# bookworm, x86-64), into .devdeps/icl-devdeps.tar.xz (ignored by git; about
# 10 MB). bench/gpu/run_all.sh unpacks it into /tmp when the device machine
# has no such packages and no network to install them. glibc, libstdc++,
# libgcc, libgomp and zlib are left out on purpose: the device's own (newer) ones
# serve, and an older libgomp than the device compiler's would break OpenMP.
#
#   bench/gpu/prepare_carry.sh            then: run(..., carry = [".devdeps"])
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/.devdeps
stage=$(mktemp -d)
d=$stage/devdeps
mkdir -p "$d/include" "$d/lib/pkgconfig" "$d/bin"
inc() { # inc header-or-dir -> include/<name>
  cp -rL "$1" "$d/include/$2"
}
inc /usr/include/lua5.4 lua5.4
cp -L /usr/include/x86_64-linux-gnu/lua5.4-deb-multiarch.h "$d/include/lua5.4/" # luaconf.h includes it (Debian)
inc /usr/include/yaml.h yaml.h
inc /usr/include/x86_64-linux-gnu/openblas-pthread openblas
inc /usr/include/plplot plplot

# libraries: the four and whatever they load that is not part of the C/C++ runtime
skip='^(libc|libm|libdl|libpthread|librt|libz|libstdc\+\+|libgcc_s|libgomp|ld-linux-x86-64|linux-vdso)\.'
libs="/usr/lib/x86_64-linux-gnu/liblua5.4.so.0 /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0
      /usr/lib/x86_64-linux-gnu/libyaml-0.so.2 /usr/lib/x86_64-linux-gnu/libplplot.so.17 /usr/bin/lua5.4"
pk=$(command -v pkgconf || command -v pkg-config)
libs="$libs $pk"
for f in $libs; do
  deps=$(ldd "$f" | awk '/=>/ {print $3}')
  case "$f" in */bin/*) ;; *) deps="$f $deps" ;; esac # programs go to bin/, below
  for dep in $deps; do
    base=$(basename "$dep")
    if [[ "$base" =~ $skip ]]; then continue; fi
    [ -e "$d/lib/$base" ] || cp -L "$dep" "$d/lib/$base"
  done
done
cp -L /usr/bin/lua5.4 "$d/bin/lua5.4"
# the Lua modules the icl command needs beside its own (argparse, LuaFileSystem)
mkdir -p "$d/share/lua/5.4" "$d/lib/lua/5.4"
cp -L /usr/share/lua/5.4/argparse.lua "$d/share/lua/5.4/"
cp -L /usr/lib/x86_64-linux-gnu/lua/5.4/lfs.so "$d/lib/lua/5.4/"
cp -L "$pk" "$d/bin/pkg-config"
# link-time names
ln -sf liblua5.4.so.0 "$d/lib/liblua5.4.so"
ln -sf libopenblas.so.0 "$d/lib/libopenblas.so"
ln -sf libyaml-0.so.2 "$d/lib/libyaml.so"
ln -sf libplplot.so.17 "$d/lib/libplplot.so"

# pkg-config files relative to their own folder
pc() { # name cflags libs version
  cat >"$d/lib/pkgconfig/$1.pc" <<EOF
prefix=\${pcfiledir}/../..
libdir=\${prefix}/lib
includedir=\${prefix}/include
Name: $1
Description: carried for icl's GPU run
Version: $4
Cflags: $2
Libs: $3
EOF
}
pc lua5.4 '-I${includedir}/lua5.4' '-L${libdir} -llua5.4' 5.4.4
pc openblas '-I${includedir}/openblas' '-L${libdir} -lopenblas' 0.3.21
pc yaml-0.1 '-I${includedir}' '-L${libdir} -lyaml' 0.2.5
pc plplot '-I${includedir}/plplot' '-L${libdir} -lplplot' 5.15.0

mkdir -p "$out"
tar -C "$stage" -cJf "$out/icl-devdeps.tar.xz" devdeps
rm -rf "$stage"
ls -la "$out/icl-devdeps.tar.xz"
echo "carry .devdeps with the device run (bench/gpu/run_all.sh unpacks it when needed)"
