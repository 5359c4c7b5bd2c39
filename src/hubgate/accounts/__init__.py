"""Accounts: users, emails, passwords, sessions, tokens, throttling and mail."""
