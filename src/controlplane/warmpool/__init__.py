"""The warm pool: spare containers per project and node, and the refiller that keeps them."""
