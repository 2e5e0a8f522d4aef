"""Lambda entry points (thin: parse the event, call the library, answer). ``functions/<name>/``
re-exports these, and the local runtime's event-source poller calls the very same functions."""
