"""The outbox: durable jobs for writes to HubSpot, run at least once by one instance.

``jobs`` holds what a job is and the pure retry policy; ``store`` the
interface of where jobs are kept, ``sqlite`` (the embedded default, a file
in ``var/``) and ``redis`` (shared by every instance) its two
implementations; ``worker`` the component that takes due jobs and runs them.
docs/call-logging.md#the-outbox says what is guaranteed.
"""
