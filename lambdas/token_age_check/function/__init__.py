"""Token age check (deployed as the package `function`)."""
