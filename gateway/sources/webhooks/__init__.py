"""CPaaS webhooks (Twilio, Telnyx, Vonage): one sans-I/O module per provider."""
