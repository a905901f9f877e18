"""The widgets the dashboard screens are made of."""
