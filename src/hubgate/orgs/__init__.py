"""Organizations, members, teams and resources."""
