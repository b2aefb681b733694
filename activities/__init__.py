"""Adapters behind small ports: the event store, eligibility and notifications."""
