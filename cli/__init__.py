"""The `mantle` command line: the top of the layers, which starts and seeds everything else.

It lives apart from `core/` (settings, errors, statuses: the ground every layer stands on) because
it imports every layer: `mantle up` supervises the API and the workers (`cli/supervisor.py`) and
seeds a local organization with the example apps (`cli/seed.py`, `cli/examples/`).
"""
