"""Live events: changes of tenants and nodes as Server-Sent Events, fed by LISTEN/NOTIFY."""
