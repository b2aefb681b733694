"""The `course` command and the client it (and the tests) use."""
