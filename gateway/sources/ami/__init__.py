"""Asterisk and FreePBX through the Asterisk Manager Interface (AMI): call events and click-to-dial.

Pure (sans-I/O):

- ``protocol``: the banner, ``Key: Value`` messages, actions, the MD5 login key;
- ``events``: AMI events to the calls of a ``gateway.sources.pbxcalls.CallBook``;
- ``settings``: the ``[ami.<portal>]`` tables, validated.

I/O:

- ``client``: one tenant's connection (a component): login, back-off,
  the calls in progress on connecting, the events to the tracker, Originate.

docs/pbx.md says what to configure on the PBX and what the gateway reports.
"""
