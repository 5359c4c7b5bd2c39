"""The gate: forward-auth at inference scale.

Every call to a protected model server asks ``GET /auth/check`` first, so what is
here runs once per inference request, not once per sign-in: the lean answer path,
the per-process decision cache and the change sequence that invalidates it, the
routes of deployments bound to a host or path prefix, the signed identity handed
to upstreams and the per-token usage counters.
"""
