"""What every part of the release tooling stands on: running commands, git, waiting,
time, durable files, typed records and where the project's files are."""
