"""Uploaded media: receiving, validating and spooling files to disk."""
