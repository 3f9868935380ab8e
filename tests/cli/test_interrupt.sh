#!/usr/bin/env bash
# Interrupted commands (issue 12), with a checkpoint big enough (Qwen3.5-0.8B
# shapes, one layer: ~0.5 GB, a 248k vocabulary) to be caught at work:
# synth / quantize on SIGINT / SIGTERM remove their temporary output, a kill -9
# leaves one that the next run reports and --force removes; chat's Ctrl-C
# stops a reply (the model decodes slowly and, with random weights, hardly
# ever ends by itself), which stays in the history, on a pipe and on a
# terminal (tmux, skipped when absent). Label "heavy": not in the sanitizer run.
# Env: FP4RT_BIN (the fp4rt binary), FP4RT_TMP (a scratch directory).
set -u
. "$(dirname "$0")/cli_lib.sh"
cli_setup cli-int fp4rt-int-$$

big=$tmp/big
check "$bin synth --config qwen3.5-0.8b --layers 1 --out $big >/dev/null" "synth 0.8b, 1 layer"

# --- interrupted and killed runs -----------------------------------------------------
wait_for() { for _ in $(seq 1 200); do compgen -G "$1" >/dev/null && return 0; sleep 0.05; done; return 1; }
for sig in INT TERM; do
    "$bin" synth --config qwen3.5-0.8b --layers 1 --out "$tmp/int$sig" >/dev/null 2>"$tmp/int.err" &
    pid=$!
    wait_for "$tmp/int$sig.tmp-*"
    seen=$?
    kill -$sig $pid
    wait $pid
    rc=$?
    check "[ $seen -eq 0 ] && [ $rc -ne 0 ] && ! compgen -G '$tmp/int$sig*' >/dev/null && grep -q 'interrupted; the unfinished output was removed' $tmp/int.err" \
        "synth SIG$sig: rc=$rc, seen=$seen, left: $(ls -d "$tmp/int$sig"* 2>&1) $(cat "$tmp/int.err")"
done
"$bin" quantize --in "$big" --out "$tmp/bigq" --recipe nvidia-mixed >/dev/null 2>"$tmp/int.err" &
pid=$!
wait_for "$tmp/bigq.tmp-*"
seen=$?
kill -INT $pid
wait $pid
rc=$?
check "[ $seen -eq 0 ] && [ $rc -ne 0 ] && ! compgen -G '$tmp/bigq*' >/dev/null" "quantize SIGINT: rc=$rc, left: $(ls -d "$tmp/bigq"* 2>&1)"
# kill -9 leaves the temporary directory: the next run says so, --force removes it
"$bin" synth --config qwen3.5-0.8b --layers 1 --out "$tmp/k9" >/dev/null 2>&1 &
pid=$!
wait_for "$tmp/k9.tmp-*"
kill -9 $pid
wait $pid 2>/dev/null
check "compgen -G '$tmp/k9.tmp-$pid' >/dev/null" "kill -9 leaves $tmp/k9.tmp-$pid"
"$bin" synth --config tiny --out "$tmp/k9" >/dev/null 2>"$tmp/k9.err"
rc=$? # (read before check: a $(...) in its message resets $?)
check "[ $rc -eq 0 ] && grep -q 'k9.tmp-$pid: left by an interrupted run (pid $pid); --force removes it' $tmp/k9.err && [ -d $tmp/k9.tmp-$pid ]" \
    "stale temp dir reported: $(cat "$tmp/k9.err")"
"$bin" synth --config tiny --out "$tmp/k9" --force >/dev/null 2>"$tmp/k9.err"
rc=$? # (read before check: a $(...) in its message resets $?)
check "[ $rc -eq 0 ] && grep -q 'k9.tmp-$pid: removed' $tmp/k9.err && [ ! -e $tmp/k9.tmp-$pid ]" "stale temp dir removed with --force: $(cat "$tmp/k9.err")"


# Ctrl-C (SIGINT) during a reply stops it, the reply stays, the chat goes on.
wait_for_text() { for _ in $(seq 1 300); do [ -s "$1" ] && return 0; sleep 0.05; done; return 1; }
mkfifo "$tmp/in"
"$bin" chat --model "$big" --ctx 256 <"$tmp/in" >"$tmp/c5.out" 2>"$tmp/c5.err" &
pid=$!
exec 3>"$tmp/in"
echo "hello" >&3
wait_for_text "$tmp/c5.out"
sleep 0.3
kill -INT $pid
sleep 0.3
printf 'what was that\n' >&3
sleep 0.5
kill -INT $pid
sleep 0.3
echo "/quit" >&3
exec 3>&-
wait $pid
rc=$?
check "[ $rc -eq 0 ] && [ \$(grep -c 'reply stopped (Ctrl-C); it stays in the history' $tmp/c5.err) -eq 2 ]" \
    "chat: Ctrl-C stops replies: rc=$rc $(tr '\n' ' ' <"$tmp/c5.err" | head -c 600)"
# each stopped reply still ends with its stats line (and joins the history)
check "[ \$(answers $tmp/c5.err) -eq 2 ]" "chat: two (stopped) answers"

if ! command -v tmux >/dev/null; then
    echo "interrupt: tmux not installed: Ctrl-C on a terminal not tested"
else
    wait_text() { # FILE PATTERN COUNT
        local c
        for _ in $(seq 1 300); do
            c=$(grep -c -- "$2" "$1" 2>/dev/null)
            [ "${c:-0}" -ge "$3" ] && return 0
            sleep 0.05
        done
        return 1
    }
    tmux -L $sock new-session -d -s t3 -x 200 -y 50 \
        "$bin chat --model $big --ctx 256 2>$tmp/t3.err; echo \$? >$tmp/t3.rc; sleep 30"
    wait_text "$tmp/t3.err" 'Ctrl-D ends the chat' 1
    tmux -L $sock send-keys -t t3 'hello' Enter
    sleep 2
    tmux -L $sock send-keys -t t3 C-c
    wait_text "$tmp/t3.err" 'reply stopped' 1
    tmux -L $sock send-keys -t t3 '/quit' Enter
    wait_text "$tmp/t3.rc" . 1
    check "[ \"\$(cat $tmp/t3.rc)\" = 0 ] && grep -q 'reply stopped (Ctrl-C)' $tmp/t3.err" \
        "tty: Ctrl-C during a reply: rc $(cat "$tmp/t3.rc" 2>&1) $(tr '\n' ' ' <"$tmp/t3.err")"
fi

cli_summary "interrupt"
