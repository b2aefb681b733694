"""Trust: signed commands, the keys that make and check them, and verifying stored events."""
