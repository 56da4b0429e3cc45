"""The admin dashboard: passkey login, server-side sessions, CSRF, and the operator pages.

routes/      one module per page (thin handlers: parse, call a service, render)
passkeys.py  WebAuthn ceremonies (py_webauthn) and passkey management
sessions.py  server-side sessions, cookies and CSRF tokens
ratelimit.py login attempts per client address, counted in SQL
guard.py     FastAPI dependencies: the current admin, the CSRF check
web.py       templates, `is_htmx`, rendering a page or its fragment
forms.py     HTML form fields -> validated models, errors per field
"""
