from . import (
    callback_orphan,
    callback_service,
    check_request,
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
from . import answer_watch, connection_encryption, connection_test  # noqa: E402  isort:skip
