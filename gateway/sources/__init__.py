"""Telephony sources: each turns what it hears into model signals."""
