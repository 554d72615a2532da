#!/bin/bash
# check-layers.sh — keep the include arrows of src/ and kernels/ pointing down (README "Layout").
# Reads every #include "..." of the .c and .h files under src/ and kernels/, resolves it the
# way the compiler does (the including file's folder, then -Isrc, then -Ikernels), maps both
# ends to their layer, and prints one line per offending include:
#   FILE:LINE: layer X includes higher layer Y (PATH)
#   FILE:LINE: layer X includes its peer layer Y (PATH)
# then any loop between folders (tsort's cycle), and exits 1 when there was any; 0 and no
# output when the tree is clean. A file in a folder the table below does not know is an
# error too, so a new folder must be given its place.
#
# usage: scripts/check-layers.sh [ROOT]   (ROOT: a tree holding src/ and kernels/; default:
#        the repository this script is in)
set -u
ROOT=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$ROOT" || { echo "check-layers: cannot enter $ROOT" >&2; exit 2; }
[ -d src ] && [ -d kernels ] || { echo "check-layers: $ROOT has no src/ and kernels/" >&2; exit 2; }

# The layers, highest first: folder, then rank. A folder may include only folders of a lower
# rank (and itself); folders of equal rank are peers and include neither each other. A file
# belongs to the longest folder here that holds it, subfolders included, except for a folder
# marked "only", which holds just its own files (src/core: qb.h, ctx.c; a new src/core/x/
# must be given a line of its own).
LAYERS='
src/app             13
src/tui             12
src/lua             11
src/core/eval       10
src/core/method      9
src/core/calib       8
src/core/infer       7
src/core/quant       6
src/core/model       5
src/core/tokenizer   4
src/core/plot        3
src/core/jobs        3
src/core/util        2
src/core             1 only
kernels              0
'

edges=$(mktemp "${TMPDIR:-/tmp}/qb-layers.XXXXXX") || exit 2
trap 'rm -f "$edges"' EXIT
find src kernels -type f \( -name '*.c' -o -name '*.h' \) | sort | awk -v layers="$LAYERS" -v edgefile="$edges" '
function layer_of(path,    best, f, d) {
    best = ""
    for (f in rank)
        if (index(path, f "/") == 1 && length(f) > length(best)) best = f
    d = path; sub(/\/[^\/]*$/, "", d)
    if (best in only && d != best) return ""
    return best
}
# normalise a/b/../c and ./ parts
function norm(p,    n, parts, out, i, k) {
    n = split(p, parts, "/"); k = 0
    for (i = 1; i <= n; i++) {
        if (parts[i] == "." || parts[i] == "") continue
        if (parts[i] == ".." && k > 0 && out[k] != "..") { k--; continue }
        out[++k] = parts[i]
    }
    p = ""
    for (i = 1; i <= k; i++) p = p (i > 1 ? "/" : "") out[i]
    return p
}
function exists(p,    line, r) {
    if (p in seen_file) return seen_file[p]
    r = (getline line < p) >= 0
    close(p)
    seen_file[p] = r
    return r
}
BEGIN {
    n = split(layers, lines, "\n")
    for (i = 1; i <= n; i++) {
        k = split(lines[i], kv, " ")
        if (k >= 2) rank[kv[1]] = kv[2] + 0
        if (k == 3 && kv[3] == "only") only[kv[1]] = 1
    }
    bad = 0
}
{
    file = $0
    dir = file; sub(/\/[^\/]*$/, "", dir)
    from = layer_of(file)
    if (from == "") { printf "%s: folder %s has no layer (add it to scripts/check-layers.sh)\n", file, dir; bad = 1; next }
    ln = 0
    while ((getline line < file) > 0) {
        ln++
        if (line !~ /^[ \t]*#[ \t]*include[ \t]*"/) continue
        inc = line; sub(/^[^"]*"/, "", inc); sub(/".*$/, "", inc)
        target = ""
        cand[1] = dir "/" inc; cand[2] = "src/" inc; cand[3] = "kernels/" inc
        for (c = 1; c <= 3; c++) if (exists(cand[c])) { target = norm(cand[c]); break }
        if (target == "") continue  # not in the tree (a system header written with quotes)
        to = layer_of(target)
        if (to == "" || to == from) continue
        edge[from " " to] = 1
        if (rank[to] > rank[from]) {
            printf "%s:%d: layer %s includes higher layer %s (%s)\n", file, ln, from, to, inc; bad = 1
        } else if (rank[to] == rank[from]) {
            printf "%s:%d: layer %s includes its peer layer %s (%s)\n", file, ln, from, to, inc; bad = 1
        }
    }
    close(file)
}
END {
    for (e in edge) {
        print e > edgefile
        split(e, ab, " ")
        if (ab[1] < ab[2] && ((ab[2] " " ab[1]) in edge)) {
            printf "folders %s and %s include each other (a loop)\n", ab[1], ab[2]; bad = 1
        }
    }
    exit bad
}'
status=$?
# Longer loops between folders (A -> B -> C -> A): tsort names the folders of each.
if [ -s "$edges" ] && ! tsort "$edges" >/dev/null 2>&1; then
    echo "folders include each other in a loop through: $(tsort "$edges" 2>&1 >/dev/null | grep -v 'contains a loop' |
        sed 's/^tsort: //' | sort -u | tr '\n' ' ')"
    status=1
fi
exit $status
