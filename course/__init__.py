"""Pure domain of a treatment course: commands, events, state, the decider and its rules.

Nothing here reads a clock, touches the network or imports Temporal: time comes in as an
argument, so every rule is a plain function that a unit test (or the workflow sandbox) can run.
"""
