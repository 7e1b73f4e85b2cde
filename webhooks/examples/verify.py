#!/usr/bin/env python3
"""Checks the signature of a webhook delivery, as a receiver does before trusting it.

    WEBHOOK_SECRET=whsec_... WEBHOOK_SIGNATURE='t=...,v1=...' python3 verify.py < body

Prints `valid` and exits 0, or prints `invalid` and exits 1. In a receiver, call
`verify(secret, request.headers["webhook-signature"], raw_body)` on the raw bytes of the
body, before parsing it.
"""
import hashlib
import hmac
import os
import sys
import time


def verify(secret: str, signature: str, body: bytes, tolerance: int = 300) -> bool:
    """True when one `v1` of `signature` is HMAC-SHA256(secret, "<t>.<body>") and `t` is
    within `tolerance` seconds of now (an old delivery replayed by someone else fails)."""
    try:
        fields = [part.strip().split("=", 1) for part in signature.split(",")]
        timestamp = int(next(value for key, value in fields if key == "t"))
    except (ValueError, StopIteration):
        return False
    if abs(time.time() - timestamp) > tolerance:
        return False
    signed = f"{timestamp}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, value) for key, value in fields if key == "v1")


if __name__ == "__main__":
    ok = verify(os.environ["WEBHOOK_SECRET"], os.environ["WEBHOOK_SIGNATURE"], sys.stdin.buffer.read())
    print("valid" if ok else "invalid")
    sys.exit(0 if ok else 1)
