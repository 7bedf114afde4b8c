#!/usr/bin/env bash
# Checks that the C connector's modules form layers: builds the graph "file A calls a function that
# file B defines" from the symbols of the static library's objects (nm) and fails if it has a cycle
# (tsort). Run by ctest; prints the graph, lowest layer last.
#   layers.sh path/to/libimpulse_ring.a
set -euo pipefail
lib=$1
defined=$(nm -A --defined-only --extern-only "$lib" | awk '{ split($1, p, ":"); print p[2], $3 }')
edges=$(nm -A --undefined-only "$lib" | awk -v defs="$defined" '
  BEGIN { n = split(defs, lines, "\n"); for (i = 1; i <= n; i++) { split(lines[i], f, " "); owner[f[2]] = f[1] } }
  { split($1, p, ":"); sym = $NF; if (sym in owner && owner[sym] != p[2]) print p[2], owner[sym] }' | sort -u)
echo "$edges"
if ! order=$(echo "$edges" | tsort 2>&1 >/dev/null); then
  echo "the modules of $lib import each other: $order" >&2
  exit 1
fi
if [[ -n $order ]]; then
  echo "the modules of $lib import each other: $order" >&2
  exit 1
fi
echo "no cycle: $(echo "$edges" | tsort | sed 's/\.c\.o$//' | tr '\n' ' ')"
