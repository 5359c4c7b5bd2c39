"""Audit streaming: every audit event, as it is written, also goes to webhooks
and syslog servers chosen by an org's admins (that org's events) or by the
operator (every event).

The event is queued for each stream in its own transaction
(:func:`hubgate.audit.record`); a background job delivers each stream's queue in
order, outside any transaction, at least once, retrying with backoff.

- :mod:`.formats`: the event as a signed JSON body and as an RFC 5424 message.
- :mod:`.targets`: where a URL may point, and the sending itself.
- :mod:`.queue`: the queue and stream state as SQL for short transactions.
- :mod:`.deliver`: one pass of the background job.
- :mod:`.manage`: streams created and removed by org admins and the operator.
"""
