"""Who may do what: passwords, tokens, login throttling, ingest signatures.

All pure apart from ``logins``, which runs the password check off the event loop.

- ``passwords``: scrypt hashes;
- ``tokens``: signed session tokens and stream tickets;
- ``throttle``: failed-attempt counting over a window;
- ``logins``: the throttles and the KDF slots in front of the password check;
- ``ingest_signature``: the HMAC signature of ``POST /api/ingest``.
"""
