from . import (
    test_admin_experience,
    test_callback_api,
    test_callback_http,
    test_concurrent_http,
    test_duplication_check,
    test_hostile_callbacks,
    test_ibr_operations,
    test_ibr_sender,
    test_officer_experience,
    test_openspp_parity,
    test_outbox,
    test_tours,
)
from . import test_security
