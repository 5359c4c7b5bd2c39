"""SCIM provisioning: the org's Users, Groups and SCIM tokens in the database, changed
by the documents :mod:`hubgate.scim` parses and rendered back through it."""
