"""An AWS Lambda handler that checks a webhook's API key and reports which
database user it would connect as, with every secret read through keystead.

Environment:
    API_KEY_REF: reference to the expected API key, for example
        ``aws-sm://webhooks/api-key``.
    DB_SECRET_REF: reference to a JSON secret with ``username`` and
        ``password``, for example ``aws-sm://prod/db``.

The Lambda runtime sets AWS_REGION and the function role's credentials in
the environment, which is all keystead needs.
"""

from __future__ import annotations

import hmac
import json
import os

import keystead

API_KEY_REF = os.environ.get("API_KEY_REF", "aws-sm://webhooks/api-key")
DB_SECRET_REF = os.environ.get("DB_SECRET_REF", "aws-sm://prod/db")

# Built once per execution environment, in the init phase, without
# contacting any backend. The first invocation loads the secrets. Later
# invocations in the same environment read them from the cache, which
# refreshes them in the background ahead of their TTL.
client = keystead.Client(cache={"ttl": "5m"})


@keystead.inject_fields(DB_SECRET_REF, {"db_user": "username", "db_password": "password"}, client=client)
def describe_connection(db_user: str, db_password: str) -> dict[str, object]:
    # A real function would open a connection pool here. The password never
    # leaves this function, and never reaches a log line.
    return {"user": db_user, "password_length": len(db_password)}


def handler(event: dict, context: object) -> dict:
    """Handle one request: 401 without the right ``x-api-key`` header, else
    200 with the connection details (never the password)."""
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    expected = client.get(API_KEY_REF)
    offered = headers.get("x-api-key", "")
    if not hmac.compare_digest(offered.encode(), expected.reveal_bytes()):
        return {"statusCode": 401, "body": json.dumps({"error": "invalid API key"})}

    body = {"connection": describe_connection(), "api_key_version": expected.version}
    return {"statusCode": 200, "body": json.dumps(body)}
