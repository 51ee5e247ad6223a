from . import models, routers, schemas, services, wizards
from .hooks import pre_init_hook
