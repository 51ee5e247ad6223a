from . import (
    callback_orphan,
    callback_service,
    check_request,
    check_request_tally,
    dci_replay_entry,
    delivery_log,
    duplication_check,
    duplication_match,
    fastapi_endpoint,
    ibr_connection,
    ibr_demo,
    ibr_notification,
    ibr_sender,
    ibr_sender_key,
    ibr_subscription,
    ibr_transaction,
    openspp_migration,
    registrant_identifier,
    registry_bridge,
    res_partner,
)

# more of the models above, one job a file (they _inherit them: imported after)
from . import answer_watch, attempt_chain, connection_test  # noqa: E402  isort:skip
from . import connection_dialect, connection_encryption  # noqa: E402  isort:skip
from . import retention  # noqa: E402  isort:skip
from . import auto_check, clearance, clearance_decision, connection_policy  # noqa: E402  isort:skip
from . import enrolment_gate  # noqa: E402  isort:skip
