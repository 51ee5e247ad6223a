from . import middleware, models, routers, schemas, services, wizards
from .hooks import pre_init_hook
