"""WireGuard peers of the hub (optional, enabled by `WG_HUB_PUBLIC_KEY` + `WG_ENDPOINT`).

`service` holds the rules and the functions other code calls; `routes` the HTTP API;
`device` reads and writes an interface's peers (UAPI socket or `wg`); `sync` keeps the
interface equal to the database.
"""
