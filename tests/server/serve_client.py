"""What the Python clients of the fp4rt serve tests share (serve_openai.py,
serve_browser.py): the pass/fail count, the summary line and exit status, and
plain-HTTP helpers (urllib, no dependency) next to the client under test.

    check(cond, what)          counts; prints "FAIL: what" to stderr when cond is false
    finish(name)               prints "NAME: N passed, N failed"; exits 1 on any failure
    post(base, key, path, body)  POST JSON (Bearer key, or none), the JSON reply
    metric(base, name, key)    a /metrics sample's value as text ("" when absent)
"""
import json
import sys
import urllib.request

counts = {"passed": 0, "failed": 0}


def check(cond, what):
    if cond:
        counts["passed"] += 1
    else:
        counts["failed"] += 1
        print("FAIL:", what, file=sys.stderr)


def finish(name):
    print(f"{name}: {counts['passed']} passed, {counts['failed']} failed")
    sys.exit(1 if counts["failed"] else 0)


def _headers(key):
    return {"Authorization": "Bearer " + key} if key else {}


def post(base, key, path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                 headers={**_headers(key), "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def metric(base, name, key=None):
    text = urllib.request.urlopen(urllib.request.Request(base + "/metrics", headers=_headers(key))).read().decode()
    return next((l.split()[1] for l in text.splitlines() if l.split(" ")[0] == name), "")
