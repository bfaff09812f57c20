"""The gateway's users: who they are, their numbers and SIP addresses.

- ``directory``: users, the users file, lookups by login, AOR and number (pure apart from load/save);
- ``phone``: numbers to E.164 (pure);
- ``reload``: the users file watched and reloaded on the fly (I/O).
"""
