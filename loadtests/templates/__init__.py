"""Template files for `rolescope load --api template --template FILE`."""
