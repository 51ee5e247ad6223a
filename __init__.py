from . import models, routers, wizards
