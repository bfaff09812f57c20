"""httpx's request log lines, with credentials kept out of them.

httpx logs every request's URL at INFO. Some URLs carry a credential in
their query: a presigned recording URL (Telnyx's ``X-Amz-Signature``), the
developer API key of HubSpot's calling-settings requests (``hapikey``). The
line stays, useful as it is; its query does not.
"""

from __future__ import annotations

import logging

import httpx


class _QueryRedacted(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) > 1 and isinstance(args[1], httpx.URL) and args[1].query:
            record.args = (args[0], args[1].copy_with(query=None), *args[2:])
        return True


_REDACTED = _QueryRedacted()


def redact_request_queries() -> None:
    """Leave the query out of httpx's request lines (idempotent: one filter however often called)."""
    logging.getLogger("httpx").addFilter(_REDACTED)
