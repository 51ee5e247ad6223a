from . import (
    callback_log,
    callback_service,
    dci_replay_entry,
    duplication_check,
    fastapi_endpoint,
    ibr_connection,
    ibr_sender,
    ibr_sender_key,
    ibr_transaction,
    registrant_identifier,
    res_partner,
)
