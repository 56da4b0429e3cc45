"""Proxmox nodes registered with the control plane."""
