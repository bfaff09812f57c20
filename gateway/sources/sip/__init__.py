"""SIP ingestion: dialog-event subscriptions (RFC 4235) and PUBLISH (RFC 3903).

The sans-I/O half lives in four modules with one job each:

- ``dialoginfo``: ``application/dialog-info+xml`` bytes to a ``DialogInfo``,
  refusing hostile or malformed XML with a precise ``DialogInfoError``;
- ``endstatus``: the table from a dialog's termination (direction, whether it
  was confirmed, ``event`` reason, SIP ``code``) to the SDK's ``EndStatus``;
- ``watch``: ``EntityWatch``, the per-subscription (or per-PUBLISH-entity)
  dialog set that turns successive documents into model ``Signal``s;
- ``publication``: RFC 3903 PUBLISH decisions with self-validating entity tags.

Transports, the SUBSCRIBE client and the PUBLISH server build on these.
"""
