"""SIP: dialog-event subscriptions (RFC 4235) and PUBLISH (RFC 3903), out of the call path.

Pure (sans-I/O: bytes or parsed messages in, decisions or signals out):

- ``adapter``: the one module that knows the SIP library (aiosipua);
- ``message_rules``: framing, caps and validation of SIP messages;
- ``digest``: which digest challenge to answer, with which nonce count;
- ``dialoginfo``: ``application/dialog-info+xml`` to plain data, hostile XML refused;
- ``dialog_watch``: one watched entity's dialogs, turned into model ``Signal``s;
- ``subscribe_rules``: what an answer or a NOTIFY means for a subscription;
- ``publish_rules``: RFC 3903 PUBLISH decisions with self-validating entity tags;
- ``click_to_dial_rules``: click-to-dial by REFER: our legs recognised, sipfrags read;
- ``coordination``: the interface to what instances share (implemented in ``gateway.broker``);
- ``settings``: the ``[sip]`` table, validated.

I/O, each beside the pure module it drives:

- ``message_transport``: UDP and TCP sockets (``message_rules``);
- ``transactions``: retransmissions absorbed and retried, with timers;
- ``dialog_delivery``: a watch's signals to the tracker, kept through an outage (``dialog_watch``);
- ``ownership``: heartbeats and leases: this instance's share of the AORs (``gateway.sources.ownership``);
- ``subscribe_client``: one SUBSCRIBE dialog per user AOR held here (``subscribe_rules``, ``ownership``);
- ``publish_server``: the PUBLISH receiver (``publish_rules``);
- ``click_to_dial``: the click-to-dial legs: INVITE, REFER, BYE (``click_to_dial_rules``);
- ``service``: the SIP component: listeners, server transactions, routing by method.

How a dialog's end becomes an ``EndStatus`` is ``gateway.sources.endstatus``.
"""
