"""The API's routers, one file per resource; ``ROUTERS`` is the order app.py includes them in."""
from core.api.routes import (api_keys, auth, dynamics, evaluate, gems, health, lattices, reflect, search,
                             snapshots)

ROUTERS = [health.router, auth.router, lattices.router, gems.router, search.router, reflect.router,
           dynamics.router, evaluate.router, snapshots.router, api_keys.router]
