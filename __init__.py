from . import models, routers, schemas, services, wizards
