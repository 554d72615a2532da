# lib.sh — helpers for the shell test suites: TAP-style "ok N - name" / "not ok N - name" lines,
# and running the quantbench binary with captured stdout, stderr and exit status.
QB_BIN=${QB_BIN:-build/quantbench}
QB_MODELS=${QB_MODELS:-../shared/models}
QB_DATA=${QB_DATA:-../shared/data}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/qbtest.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
n=0; failures=0

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failures=$((failures + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
# skip NAME REASON: a TAP skip ("ok N - NAME # SKIP REASON"), counted as skipped, not passed.
# For needs that may legitimately be absent (a llama.cpp peer binary).
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
# need_fixture NAME FILE...: true when every FILE (from ../shared: QB_MODELS, QB_DATA) exists;
# otherwise NAME is reported skipped, or failed when CI=true (CI always has ../shared), and the
# call is false. Use: need_fixture "scan" "$M" "$T" || { finish; exit; }
need_fixture() {
    local name=$1 f; shift
    for f in "$@"; do
        [ -e "$f" ] && continue
        if [ "${CI:-}" = true ]; then not_ok "$name" "$f missing (CI=true: ../shared must be present)"
        else skip "$name" "$f missing (set QB_MODELS / QB_DATA)"; fi
        return 1
    done
}

# run ARGS...: sets $rc, $out, $err
run() {
    "$QB_BIN" "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    out=$(cat "$TMP/out"); err=$(cat "$TMP/err")
}

# expect_fail NAME PATTERN ARGS...: exit status exactly 1 (not a crash, not a sanitizer report),
# one-line message on stderr matching PATTERN (grep -E).
expect_fail() {
    local name=$1 pat=$2; shift 2
    run "$@"
    if [ "$rc" -eq 1 ] && printf '%s' "$err" | grep -qE -- "$pat" && [ "$(printf '%s\n' "$err" | wc -l)" -le 2 ]; then
        ok "$name"
    else
        not_ok "$name" "exit $rc, wanted 1 and /$pat/" "stderr: $(printf '%s' "$err" | head -5)"
    fi
}

finish() { echo "# $n tests, $failures failed"; [ "$failures" -eq 0 ]; }
