"""Twilio: webhooks, TwiML builders and the Media Streams route."""
