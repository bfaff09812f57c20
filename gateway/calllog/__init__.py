"""Server-side call logging: every ended call in HubSpot exactly once, with or without a widget.

``settings`` reads its keys of the ``[hubspot]`` table; ``properties`` and
``decision`` are pure (what to write, and whether to create or update);
``jobs`` runs the outbox jobs against HubSpot (``gateway.hubspot.crm``);
``service`` is the component assemble starts. docs/call-logging.md.
"""
