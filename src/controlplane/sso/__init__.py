"""Single sign-on into tenant apps: Ed25519-signed short-lived tokens, JWKS, redemption."""
