"""The Temporal workflow: a deterministic shell around the pure decider in `course`."""
