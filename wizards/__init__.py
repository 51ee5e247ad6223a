from . import check_wizard, clearance_decision_wizard
