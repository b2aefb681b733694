"""Plain SQL migrations, applied in file-name order by `course migrate` and by the worker."""
