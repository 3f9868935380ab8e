#!/usr/bin/env bash
# The chat page at / in a real browser (issue 17): Debian's chromium +
# chromium-driver, headless, driven by Selenium from PyPI in the virtualenv of
# test_serve_openai.sh. Exits 77 (skipped) when chromium, chromedriver or
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
venv=${FP4RT_VENV:-${FP4RT_TMP:-/tmp}/../serve-venv}
mkdir -p "$(dirname "$venv")"
if ! "$venv/bin/python" -c 'import selenium' 2>/dev/null; then
    if ! { [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"; } >"$tmp/pip.log" 2>&1 ||
        ! "$venv/bin/pip" install -q selenium >>"$tmp/pip.log" 2>&1; then
        echo "SKIP: cannot install selenium into $venv: $(tail -n 1 "$tmp/pip.log")"
        exit 77
    fi
fi
serve_start browser --parallel 1 --ctx 4096
HOME=$tmp "$venv/bin/python" "$(dirname "$0")/serve_browser.py" "$base"
check '[ $? = 0 ]' "serve_browser.py"
serve_stop
check '[ "$stop_rc" = 0 ]' "SIGTERM: exit $stop_rc"
cli_summary test_serve_browser
