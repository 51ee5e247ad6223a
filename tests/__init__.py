from . import test_callback_api, test_duplication_check, test_ibr_sender
