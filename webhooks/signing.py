"""The signature of a webhook's body (README, "Webhooks": the scheme and how a receiver checks it).

`X-Omi-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by the endpoint's secret>`.
The timestamp is signed with the body, so a receiver that refuses old timestamps refuses a replay.
"""

import hashlib
import hmac
import secrets

HEADER = "X-Omi-Signature"
SECRET_PREFIX = "whsec_"
SECRET_LENGTH = (16, 200)


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"
