"""The application services both edges call: open, record, read, audit, verify, sign.

The HTTP API (`api/`) and the CLI (`cli/`) turn a staff credential into an actor and hand it here;
this is the one place a reader follows a course from a caller to Temporal and PostgreSQL: commands
signed and sent (`courses`), reads decided and recorded (`reads`), lists and notifications
(`listing`, `queries`, `notifications`), request ids (`request_ids`).
"""
