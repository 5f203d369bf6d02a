"""Test helpers shared across the suite: live servers, databases, environment."""
