"""The customer portal: the built SvelteKit app (portal/), served by the control plane at `/`."""
