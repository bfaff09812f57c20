"""FreeSWITCH through its event socket (mod_event_socket, inbound mode): call events and click-to-dial.

Pure (sans-I/O):

- ``protocol``: ``Content-Type``/``Content-Length`` frames, URL-encoded event headers, commands;
- ``events``: channel events (and ``show channels``) to a ``gateway.sources.pbxcalls.CallBook``;
- ``settings``: the ``[esl.<portal>]`` tables, validated.

I/O:

- ``client``: one tenant's connection (a component): auth, back-off, the
  channels in progress on connecting, the events to the tracker, ``bgapi``.

docs/pbx.md says what to configure on the switch and what the gateway reports.
"""
