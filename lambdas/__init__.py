"""Lambda functions: each has its runtime package (`function/`), its CDK construct and its tests side by side."""
