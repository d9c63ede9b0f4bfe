"""Protocol parsers: pure functions over the byte streams of one connection (no BPF needed)."""
