"""Authentication of end users: passwords, access and refresh tokens, dependencies.

ApiError (web.errors)
 ├── Unauthorized ── LoginFailed      wrong e-mail or password (same answer for both)
 │                └─ RefreshReused    a rotated refresh token came back: family revoked
 └── Forbidden                        wrong registration token, disabled account
"""
