"""App management inside a tenant's container: the project's systemd unit (state,
restart, journal) and its named actions, over `pct exec` on the node's SSH connection."""
