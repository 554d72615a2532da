#!/bin/bash
# test-recipes.sh — every shipped recipe runs on stories260K with fast settings and its results
# pass shape and sanity checks (tests/lua/check_recipes.lua prints the TAP lines); the bits sweep
# and the teaching demo also run through the sandboxed runner as a user would run them.
. "$(dirname "$0")/../cli/lib.sh"
if [ ! -f "$QB_MODELS/stories260K/stories260K.bin" ]; then
    echo "ok 1 - skipped: $QB_MODELS/stories260K missing"; exit 0
fi
"$QB_BIN" run --trusted --out "$TMP/checks" tests/lua/check_recipes.lua examples 2>"$TMP/err"
rc=$?
if [ $rc -ne 0 ]; then echo "# check_recipes.lua exit $rc: $(tail -5 "$TMP/err")"; fi
# the sandboxed runner, as a user runs it
run run --out "$TMP/user" examples/teaching_demo.lua bits=4 images=1
if [ "$rc" -eq 0 ] && [ -f "$TMP/user/demo_4bit_mapping.png" ] && printf '%s' "$out" | grep -q "sqnr_tensor"; then
    echo "ok - teaching_demo through the sandboxed runner writes its images and table"
else
    echo "not ok - teaching_demo through the sandboxed runner (exit $rc): $(printf '%s' "$err" | head -3)"
fi
run run --out "$TMP/user" examples/bits_sweep.lua fast=1 plots=1 prefix=s
if [ "$rc" -eq 0 ] && [ -s "$TMP/user/s.csv" ] && [ -s "$TMP/user/s.json" ] && [ -s "$TMP/user/s_ppl.png" ] && [ -s "$TMP/user/s_sqnr.svg" ]; then
    echo "ok - bits_sweep through the sandboxed runner writes CSV, JSON, PNG and SVG"
else
    echo "not ok - bits_sweep through the sandboxed runner (exit $rc): $(printf '%s' "$err" | head -3)"
fi
run run --out "$TMP/user" examples/bits_sweep.lua fats=1
if [ "$rc" -eq 1 ] && printf '%s' "$err" | grep -q "unknown argument 'fats'"; then
    echo "ok - a mistyped recipe argument is refused, naming it"
else
    echo "not ok - mistyped recipe argument (exit $rc): $(printf '%s' "$err" | head -3)"
fi
[ $rc -ne 255 ]
