"""The clinic's rules, one module per phase of a course, behind `course.decider.decide`.

A clinician's question has one file to read: what stops a dose is in `dosing.py`, what completes
preparation in `preparation.py`. Each function takes the state and a command and returns events
or raises a RuleViolation; none does I/O or reads a clock (`now` is passed in).
"""
