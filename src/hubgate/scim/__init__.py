"""SCIM 2.0 (RFC 7643, RFC 7644), the protocol only: documents through scim2-models,
discovery, filters as a typed tree, PATCH on typed values and the SCIM errors. It
imports neither the ORM nor the web framework; :mod:`hubgate.provisioning` applies it
to the database and ``web/protocols/scim.py`` serves it."""
