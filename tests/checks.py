"""Failing a test script the way tests/*.sh read it: one line starting
"FAIL: " on stdout, then exit status 1."""

import sys


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)
