# The harness the CLI test scripts share (sourced, not run):
#   cli_setup NAME [TMUX_SOCKET]  bin = $FP4RT_BIN (absolute), tmp = a fresh
#                                 scratch folder, removed at exit (with the
#                                 tmux server on TMUX_SOCKET, if given)
#   check 'CONDITION' MESSAGE     counts CONDITION (eval'd); MESSAGE on failure.
#                                 Read $? into a variable before: a $(...) in
#                                 MESSAGE is expanded first and resets $?
#   answers FILE                  how many replies a chat's stderr reports
#   cli_summary NAME              "NAME: N passed, N failed"; the script's status
# Env: FP4RT_BIN (the fp4rt binary), FP4RT_TMP (a scratch directory).
cli_setup() {
    bin=${FP4RT_BIN:?}
    bin=$(realpath "$bin")
    tmp=${FP4RT_TMP:-/tmp}/$1-$$
    rm -rf "$tmp"
    mkdir -p "$tmp"
    sock=${2:-}
    if [ -n "$sock" ]; then
        trap 'tmux -L $sock kill-server 2>/dev/null; rm -rf "$tmp"' EXIT
    else
        trap 'rm -rf "$tmp"' EXIT
    fi
    pass=0
    fail=0
}
ok() { pass=$((pass + 1)); }
bad() {
    fail=$((fail + 1))
    echo "FAIL: $*" >&2
}
check() { if eval "$1"; then ok; else bad "$2"; fi; }
answers() { grep -c ' generated (' "$1"; }
cli_summary() {
    echo "$1: $pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}
