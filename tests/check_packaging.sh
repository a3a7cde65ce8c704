#!/usr/bin/env bash
# What an installed pyhot must be: one binary that needs nothing beyond libc
# (so it can be copied into a container), installed with its man page and
# bash completion, and a Debian package holding the same.
#   check_packaging.sh BUILD_DIR
set -euo pipefail
build=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if grep -q "PYHOT_STATIC:BOOL=OFF" "$build/CMakeCache.txt"; then
  echo "skipped: this build links dynamically (PYHOT_STATIC=OFF)"; exit 0
fi
libraries=$(ldd "$build/pyhot" | awk '{ print $1 }' | grep -v -E '^(linux-vdso\.so\.1|libc\.so\.6|/lib64/ld-linux-x86-64\.so\.2)$' || true)
[ -z "$libraries" ] || { echo "pyhot needs more than libc: $libraries"; exit 1; }

cmake --install "$build" --prefix "$work/prefix" >/dev/null
for f in bin/pyhot share/man/man1/pyhot.1 share/bash-completion/completions/pyhot; do
  [ -e "$work/prefix/$f" ] || { echo "cmake --install did not install $f"; exit 1; }
done
"$work/prefix/bin/pyhot" --version | grep -q "^pyhot [0-9]" || { echo "the installed pyhot does not run"; exit 1; }

words=$(bash -c 'source "$1"; COMP_WORDS=(pyhot re); COMP_CWORD=1; _pyhot; echo "${COMPREPLY[*]}"' _ \
        "$work/prefix/share/bash-completion/completions/pyhot")
[ "$words" = "reload revert" ] || { echo "completion of 'pyhot re' gave '$words'"; exit 1; }
flags=$(bash -c 'source "$1"; COMP_WORDS=(pyhot reload 1 --dr); COMP_CWORD=3; _pyhot; echo "${COMPREPLY[*]}"' _ \
        "$work/prefix/share/bash-completion/completions/pyhot")
[ "$flags" = "--dry-run" ] || { echo "completion of 'pyhot reload 1 --dr' gave '$flags'"; exit 1; }

if command -v groff >/dev/null 2>&1; then
  groff -man -Tutf8 -ww -z "$work/prefix/share/man/man1/pyhot.1" 2>"$work/groff.err"
  [ ! -s "$work/groff.err" ] || { echo "the man page has errors:"; cat "$work/groff.err"; exit 1; }
fi

build=$(cd "$build" && pwd)
(cd "$work" && cpack --config "$build/CPackConfig.cmake" -B "$work/package" >/dev/null)
deb=$(ls "$work"/package/*.deb)
contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/pyhot ./usr/share/man/man1/pyhot.1 ./usr/share/bash-completion/completions/pyhot; do
  grep -q " $f\$" <<<"$contents" || { echo "the package lacks $f"; exit 1; }
done
dpkg-deb -f "$deb" Depends | grep -q "^libc6" || { echo "the package should depend on libc6 only"; exit 1; }
echo "one binary needing only libc; install and package hold the binary, man page and completion: ok"
