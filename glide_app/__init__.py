"""The application layer: the `glide` command, the demo and the offline jobs (top of the import graph)."""
