from . import check_wizard
