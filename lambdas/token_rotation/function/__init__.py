"""Secrets Manager rotation function for the gateway token (deployed as the package `function`)."""
