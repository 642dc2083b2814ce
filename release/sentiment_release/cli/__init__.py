"""The `sentiment` command: each subcommand parses, calls the library, prints."""
