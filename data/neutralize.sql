-- A neutralized copy must not sign as production nor call the IBR with its credentials.
UPDATE spp_dci_ibr_connection
   SET signing_private_key = NULL,
       encryption_private_key = NULL,
       bearer_token = NULL,
       oauth_client_secret = NULL,
       active = false;
UPDATE spp_dci_ibr_sender SET callback_token = NULL;
