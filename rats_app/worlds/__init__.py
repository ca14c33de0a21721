"""Embedded worlds (plugins): small offline domains with their own model, reward and ground truth."""
