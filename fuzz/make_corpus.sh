#!/usr/bin/env bash
# The seed corpus: every .py of testdata/ alone, and each before/after pair
# joined as one edit (the separator parser_fuzz.cpp splits at).
#   fuzz/make_corpus.sh DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out=${1:?usage: make_corpus.sh DIR}
mkdir -p "$out"
n=0
while IFS= read -r -d '' file; do
  cp "$file" "$out/seed_$n.py"; n=$((n + 1))
done < <(find "$root/testdata" -name '*.py' -print0 | sort -z)
while IFS= read -r -d '' before; do
  after="${before%before.py}after.py"
  [ -f "$after" ] || continue
  { cat "$before"; printf '\n#---pyhot-edit---\n'; cat "$after"; } > "$out/edit_$n.py"; n=$((n + 1))
done < <(find "$root/testdata" -name 'before.py' -print0 | sort -z)
echo "make_corpus: $n seeds in $out"
