#!/bin/bash
# test-layers.sh — the include layering (README "Layout", scripts/check-layers.sh): the tree as
# it is passes; copies of src/ and kernels/ with one bad include injected fail, with a line
# naming the file, the line and the two layers: a kernel including core, the model layer
# including the forward pass (an upward arrow), two peer folders (plot, jobs) including each
# other, and a folder the table does not know.
. "$(dirname "$0")/lib.sh"
CHECK=scripts/check-layers.sh

out=$($CHECK 2>&1); rc=$?
if [ $rc -eq 0 ] && [ -z "$out" ]; then ok "layers"; else not_ok "layers" "exit $rc" "$(printf '%s' "$out" | head -10)"; fi

# fresh copy of the tree in $TMP/t, then inject: inject FILE LINE
copy() { rm -rf "$TMP/t"; mkdir -p "$TMP/t"; cp -r src kernels "$TMP/t/"; }
inject() { printf '%s\n' "$2" >>"$TMP/t/$1"; }

# expect_bad NAME PATTERN: the check fails on $TMP/t and says PATTERN (grep -E)
expect_bad() {
    local out rc
    out=$($CHECK "$TMP/t" 2>&1); rc=$?
    if [ $rc -eq 1 ] && printf '%s\n' "$out" | grep -qE -- "$2"; then ok "$1"
    else not_ok "$1" "exit $rc, wanted 1 and /$2/" "$(printf '%s' "$out" | head -5)"; fi
}

copy
inject kernels/dot_ref.c '#include "core/qb.h"'
n_lines=$(wc -l <"$TMP/t/kernels/dot_ref.c")
expect_bad "a kernel including core is refused" \
    "^kernels/dot_ref.c:$n_lines: layer kernels includes higher layer src/core \(core/qb.h\)$"

copy
inject src/core/model/model.c '#include "../infer/infer.h"'
expect_bad "model including infer is refused" \
    "^src/core/model/model.c:[0-9]+: layer src/core/model includes higher layer src/core/infer"

copy
inject src/core/plot/plot.c '#include "../jobs/job.h"'
inject src/core/jobs/job.c '#include "../plot/plot.h"'
expect_bad "peer folders including each other are refused" \
    "^folders src/core/jobs and src/core/plot include each other"

copy
mkdir -p "$TMP/t/src/core/extra"
printf '/* extra.c */\n#include "../qb.h"\n' >"$TMP/t/src/core/extra/extra.c"
expect_bad "a folder without a layer is refused" "^src/core/extra/extra.c: folder src/core/extra has no layer"

finish
