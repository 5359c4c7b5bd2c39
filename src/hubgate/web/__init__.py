"""The HTTP layer: routes for pages, the JSON API and forward-auth. It holds no rules."""
