"""The `fedmarket` command groups, one module each; `client.cli` mounts them."""
