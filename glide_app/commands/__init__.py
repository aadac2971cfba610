"""One click command or group per `glide` subcommand; each imports its job only when run."""
