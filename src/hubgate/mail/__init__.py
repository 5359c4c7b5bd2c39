"""Delivering the outbox over SMTP, outside any request.

``message`` composes a MIME message from an outbox row, ``smtp`` opens a
connection as ``HUBGATE_SMTP_URL`` says, ``outbox`` claims and settles rows in
short transactions, and ``sender`` ties them together for the background worker
and ``hubgate mail send``.
"""
