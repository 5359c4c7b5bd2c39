"""What keeps an account in its owner's hands, on top of ``accounts`` and ``sso``:
password reset and change (``recovery``), the sessions and SSO links that reach it
(``devices``), and the neutral refusals both answer with (``refusals``)."""
