"""Call event gateway: telephony in, HubSpot Calling Extensions SDK events out."""

__version__ = "0.1.0"
