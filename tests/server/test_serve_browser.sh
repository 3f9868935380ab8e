#!/usr/bin/env bash
# The chat page at / in a real browser (issue 17): Debian's chromium +
# chromium-driver, headless, driven by Selenium from PyPI in the virtualenv of
# tests/server/serve_lib.sh (serve_venv). Exits 77 (skipped) when chromium, chromedriver or
# Selenium are not available.
set -uo pipefail
. "$(dirname "$0")/../cli/cli_lib.sh"
. "$(dirname "$0")/serve_lib.sh"
cli_setup test_serve_browser
for b in /usr/bin/chromium /usr/bin/chromedriver; do
    if [ ! -x "$b" ]; then
        echo "SKIP: $b is missing (apt-get install chromium chromium-driver)"
        exit 77
    fi
done
serve_venv
# a second server on a model with a vision tower (the synthetic tiny) for the images
"$bin" synth --config tiny --out "$tmp/tiny" --seed 7 >/dev/null
text_model=$serve_model
serve_model=$tmp/tiny
serve_start vision --parallel 1 --ctx 512 --chunk 64
vbase=$base vpid=$spid
serve_model=$text_model
serve_start browser --parallel 1 --ctx 4096
HOME=$tmp "$venv/bin/python" "$(dirname "$0")/serve_browser.py" "$base" "$vbase" "$PWD/tests/fixtures/images/big.png"
check '[ $? = 0 ]' "serve_browser.py"
serve_stop
check '[ "$stop_rc" = 0 ]' "SIGTERM: exit $stop_rc"
spid=$vpid
serve_stop
check '[ "$stop_rc" = 0 ]' "SIGTERM (vision server): exit $stop_rc"
cli_summary test_serve_browser
