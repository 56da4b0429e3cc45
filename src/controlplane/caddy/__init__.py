"""Tenant routes in Caddy (optional, enabled by `CADDY_ADMIN_URL`).

`routes.CaddyRoutes` talks to Caddy's admin API (one route per tenant, `@id` `tenant-<id>`);
`sync` reads the desired routes from the database and runs the periodic reconciler; `api`
serves the on-demand TLS `ask` endpoint.
"""
