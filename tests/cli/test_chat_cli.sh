#!/usr/bin/env bash
# fp4rt chat as a first-time user meets it (issue 12): strict /commands, /help,
# """ blocks, per-message errors that keep the conversation, the context-full
# policy (oldest exchanges dropped, the system prompt kept), Ctrl-C stopping a
# reply, a missing tokenizer.json at start-up; on a terminal (tmux, skipped
# when absent): Ctrl-C / Ctrl-D at the prompt exit 0, history with the arrow
# keys (when built with libedit). Ctrl-C during a reply: test_interrupt.sh.
# Env: FP4RT_BIN (the fp4rt binary), FP4RT_TMP (a scratch directory).
set -u
. "$(dirname "$0")/cli_lib.sh"
cli_setup cli-chat fp4rt-chat-$$

m=$tmp/tiny
q=$tmp/q
check "$bin synth --config tiny --out $m --seed 4 >/dev/null" "synth tiny"
check "$bin quantize --in $m --out $q --recipe nvidia-mixed >/dev/null" "quantize"

# commands: case and trailing spaces, unknown ones not sent, /help, /exit ends
printf 'hello\n/think OFF  \n/think maybe\n/bogus thing\n/help\n  /think on\nagain\n/exit\nnot read\n' |
    "$bin" chat --model "$q" -n 4 --seed 1 >"$tmp/c1.out" 2>"$tmp/c1.err"
rc=$?
check "[ $rc -eq 0 ] && [ \$(answers $tmp/c1.err) -eq 2 ]" "chat: two answers, rc=$rc: $(tr '\n' ' ' <"$tmp/c1.err" | head -c 600)"
check "grep -q 'thinking off' $tmp/c1.err && grep -q 'thinking on' $tmp/c1.err" "chat: /think OFF and ' /think on'"
check "grep -q '/think on or /think off' $tmp/c1.err" "chat: /think maybe refused"
check "grep -q 'unknown command /bogus, /help lists them' $tmp/c1.err" "chat: unknown command"
check "grep -q '/reset' $tmp/c1.err && grep -q '/quit' $tmp/c1.err && grep -q '/think on|off' $tmp/c1.err" "chat: /help lists the commands"

# a """ block of several lines (an empty one too) is one message
long=$(printf 'word %.0s' $(seq 1 20))
printf '"""\nfirst line\n\n%s\nlast line\n"""\n"""one line"""\n' "$long" |
    "$bin" chat --model "$q" -n 2 --ctx 4096 >/dev/null 2>"$tmp/c2.err"
rc=$?
check "[ $rc -eq 0 ] && [ \$(answers $tmp/c2.err) -eq 2 ]" "chat: two blocks, two answers: rc=$rc $(tr '\n' ' ' <"$tmp/c2.err" | head -c 600)"

# context full: the oldest exchanges go (said), a message too long for the
# context is refused and the chat goes on; invalid UTF-8 never ends the chat
printf 'hello there my friend\nsecond message here\nthird message now\n%s\nafter\n\xff\xfe bad bytes\nstill here\n' \
    "$(printf 'word %.0s' $(seq 1 80))" |
    "$bin" chat --model "$q" -n 6 --seed 1 --ctx 80 --system "be brief" >/dev/null 2>"$tmp/c3.err"
rc=$?
check "[ $rc -eq 0 ] && grep -q 'the context is full: dropped the [0-9]* oldest messages (the system prompt stays)' $tmp/c3.err" \
    "chat: oldest turns dropped: rc=$rc $(tr '\n' ' ' <"$tmp/c3.err" | head -c 800)"
check "grep -q 'error: the message is [0-9]* tokens; the context holds 80 (--ctx); not sent' $tmp/c3.err" "chat: too long refused"
n=$(answers "$tmp/c3.err")
check "[ $n -ge 5 ] && tail -n 1 $tmp/c3.err | grep -q ' generated ('" "chat: goes on after errors ($n answers, the last message answered)"

# images (issue 18): /image FILE goes with the next message; the next turn reuses the
# held tokens (the image stays in the history, not encoded again); a missing file, a
# directory, a file that is no image are said and the chat goes on; a model without a
# vision tower refuses /image. Seed 7: the reply "C" renders back to the same ids.
v=$tmp/tiny7
check "$bin synth --config tiny --out $v --seed 7 >/dev/null" "synth tiny seed 7"
printf '/image tests/fixtures/images/tiny.png\nDescribe.\nMore.\n/image /nonexistent.png\n/image tests/fixtures\n/image tests/fixtures/images/README.md\nand this?\n/image\nstill here\n' |
    "$bin" chat --model "$v" -n 1 --think off --preserve-thinking >/dev/null 2>"$tmp/ci.err"
rc=$?
p1=$(sed -n 's/^fp4rt: \([0-9]*\) new prompt tokens.*/\1/p' "$tmp/ci.err" | sed -n 1p)
p2=$(sed -n 's/^fp4rt: \([0-9]*\) new prompt tokens.*/\1/p' "$tmp/ci.err" | sed -n 2p)
check "[ $rc -eq 0 ] && [ \$(answers $tmp/ci.err) -eq 3 ] && grep -q 'tiny.png attached to the next message (1 image)' $tmp/ci.err" \
    "chat /image: rc=$rc $(tr '\n' ' ' <"$tmp/ci.err" | head -c 800)"
check "[ -n '$p1' ] && [ -n '$p2' ] && [ '$p1' -gt 60 ] && [ '$p2' -lt 30 ]" "chat /image: turn 1 $p1 new tokens (the image's), turn 2 $p2 (reused)"
check "grep -q '/nonexistent.png: not a readable file' $tmp/ci.err && grep -q 'tests/fixtures: is a directory' $tmp/ci.err" \
    "chat /image: missing file, directory"
check "grep -q 'error: tests/fixtures/images/README.md: not a PNG, JPEG, BMP or GIF file' $tmp/ci.err && grep -q 'the message was not sent' $tmp/ci.err" \
    "chat /image: a file that is no image"
check "grep -q 'fp4rt chat: /image FILE' $tmp/ci.err" "chat /image without a file"
printf '/image tests/fixtures/images/tiny.png\nhi\n' | "$bin" chat --model models/qwen35-kjv-10m -n 1 >/dev/null 2>"$tmp/cj.err"
rc=$?
check "[ $rc -eq 0 ] && [ \$(answers $tmp/cj.err) -eq 1 ] && grep -q 'tiny.png: the model has no vision tower' $tmp/cj.err" \
    "chat /image on a model without a vision tower: rc=$rc $(tr '\n' ' ' <"$tmp/cj.err" | head -c 400)"

# no tokenizer.json: a start-up error naming the directory
cp -r "$q" "$tmp/notok" && rm "$tmp/notok/tokenizer.json"
"$bin" chat --model "$tmp/notok" </dev/null >/dev/null 2>"$tmp/c4.err"
rc=$?
check "[ $rc -eq 1 ] && grep -q 'error: $tmp/notok: no tokenizer.json in the model directory' $tmp/c4.err && ! grep -q device $tmp/c4.err" \
    "chat: no tokenizer.json: rc=$rc $(cat "$tmp/c4.err")"

# --- on a terminal -------------------------------------------------------------------
if ! command -v tmux >/dev/null; then
    echo "chat: tmux not installed: terminal behaviour not tested"
else
    # run_tty NAME ARGS: fp4rt chat in a tmux pane; its exit code lands in $tmp/NAME.rc
    run_tty() {
        local name=$1
        shift
        tmux -L $sock new-session -d -s "$name" -x 200 -y 50 \
            "$bin chat --model $* 2>$tmp/$name.err; echo \$? >$tmp/$name.rc; sleep 30"
    }
    wait_text() { # FILE PATTERN COUNT
        local c
        for _ in $(seq 1 300); do
            c=$(grep -c -- "$2" "$1" 2>/dev/null)
            [ "${c:-0}" -ge "$3" ] && return 0
            sleep 0.05
        done
        return 1
    }
    run_tty t1 "$q" -n 3
    wait_text "$tmp/t1.err" 'Ctrl-D ends the chat' 1
    tmux -L $sock send-keys -t t1 'hello' Enter
    wait_text "$tmp/t1.err" ' generated (' 1
    tmux -L $sock send-keys -t t1 Up Enter # the history recalls "hello" (libedit); plain input sends its escape sequence
    sleep 1
    tmux -L $sock send-keys -t t1 '"""' Enter 'one' Enter 'two' Enter '"""' Enter
    # three answers: hello, the recalled hello (without libedit: the arrow's
    # escape sequence as a message), the block
    wait_text "$tmp/t1.err" ' generated (' 3
    sleep 0.5
    tmux -L $sock capture-pane -p -t t1 >"$tmp/t1.pane"
    tmux -L $sock send-keys -t t1 C-c
    wait_text "$tmp/t1.rc" . 1
    n=$(answers "$tmp/t1.err")
    check "[ \"\$(cat $tmp/t1.rc)\" = 0 ] && [ $n -eq 3 ]" "tty: Ctrl-C at the prompt exits 0 ($n answers, rc $(cat "$tmp/t1.rc" 2>&1))"
    if ldd "$bin" | grep -q libedit; then
        check "[ \$(grep -c '^> hello' $tmp/t1.pane) -eq 2 ]" "tty: the Up arrow recalls the last message: $(cat "$tmp/t1.pane")"
    fi
    run_tty t2 "$q" -n 3
    wait_text "$tmp/t2.err" 'Ctrl-D ends the chat' 1
    tmux -L $sock send-keys -t t2 C-d
    wait_text "$tmp/t2.rc" . 1
    check "[ \"\$(cat $tmp/t2.rc)\" = 0 ]" "tty: Ctrl-D exits 0 (rc $(cat "$tmp/t2.rc" 2>&1))"
fi

cli_summary "chat"
