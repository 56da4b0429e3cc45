"""The browser console: single-use tickets, and a WebSocket bridged to `pct enter` in a PTY
over the node's pinned SSH connection."""
