from . import registry_id
