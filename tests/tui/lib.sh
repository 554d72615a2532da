# lib.sh — driving quantbench in a real terminal: a detached tmux session of a given size,
# send-keys, and polling capture-pane until text appears (with a deadline), never fixed sleeps.
. "$(dirname "$0")/../cli/lib.sh"
export TERM=xterm-256color LANG=C.UTF-8 LC_ALL=C.UTF-8
starts=0
T="tmux -L qbtest-$$-0"
trap '$T kill-server 2>/dev/null; rm -rf "$TMP"' EXIT

# start W H CMD...: new session running CMD (then a shell-like "exited" marker on exit)
start() {
    local w=$1 h=$2; shift 2
    $T kill-server 2>/dev/null
    starts=$((starts + 1))
    T="tmux -L qbtest-$$-$starts" # a fresh server each time: no race with one shutting down
    $T -f /dev/null new-session -d -x "$w" -y "$h" "$* ; echo QB-EXITED-\$?; sleep 30"
}
screen() { $T capture-pane -p 2>/dev/null; }
keys() { $T send-keys "$@"; }
# wait_for TEXT [SECONDS]: poll the screen until TEXT (fixed string) shows up
wait_for() {
    local text=$1 deadline=$((SECONDS + ${2:-10}))
    while [ $SECONDS -lt $deadline ]; do
        screen | grep -qF -- "$text" && return 0
        sleep 0.1
    done
    return 1
}
check() { # check NAME TEXT [SECONDS]
    if wait_for "$2" "${3:-10}"; then ok "$1"; else not_ok "$1" "never saw '$2'" "$(screen | head -20)"; fi
}
