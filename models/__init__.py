from . import (
    callback_log,
    callback_service,
    dci_replay_entry,
    duplication_check,
    fastapi_endpoint,
    ibr_connection,
    ibr_sender,
    ibr_sender_key,
    openspp_migration,
    registry_bridge,
    res_partner,
)
