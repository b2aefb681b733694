"""Fault injection on the real stack (issue 9): crashes, outages and duplicates lose nothing."""
