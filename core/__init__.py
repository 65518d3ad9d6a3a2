"""The ground every layer stands on: settings, errors, run statuses, logging; it imports nothing of ours.

The `mantle` command line, which imports every layer, is `cli/`.
"""
