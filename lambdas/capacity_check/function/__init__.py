"""EFS capacity check (deployed as the package `function`)."""
