"""The repository's settings on GitHub, made from config/ (`sentiment github setup`)."""
