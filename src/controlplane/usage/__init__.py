"""Usage graphs: a collector that copies Proxmox's rrddata into PostgreSQL, and the reads."""
