from . import models, routers, schemas, wizards
