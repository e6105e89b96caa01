"""What every component shares: errors, wire types, logging, the routing table.

Nothing here imports a component; components import from here.
"""
