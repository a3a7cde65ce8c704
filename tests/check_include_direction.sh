#!/usr/bin/env bash
# The build refuses an include that runs against the direction of
# dependencies: with the parser's include path, the parser's own header
# compiles and the differ's is not found.
#   check_include_direction.sh CXX "-Idir1;-Idir2..."
set -euo pipefail
cxx=$1
IFS=';' read -r -a flags <<<"$2"
echo '#include "parser/source_file.hpp"' | "$cxx" -std=c++20 -fsyntax-only "${flags[@]}" -x c++ - \
  || { echo "control failed: the parser's own header does not compile with its include path"; exit 1; }
if out=$(echo '#include "differ/differ.hpp"' | "$cxx" -std=c++20 -fsyntax-only "${flags[@]}" -x c++ - 2>&1); then
  echo "the parser can include the differ's header: dependencies are not enforced"; exit 1
fi
grep -q "differ/differ.hpp: No such file" <<<"$out" || { echo "unexpected failure: $out"; exit 1; }
echo "parser cannot include differ/differ.hpp: ok"
