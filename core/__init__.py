"""Settings, logging and the `mantle` command line: the small package beside the layers."""
