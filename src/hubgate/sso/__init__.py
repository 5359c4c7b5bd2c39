"""Organization SSO: connections, policy and login (filled in by the SSO issues)."""
