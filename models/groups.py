"""The module's security groups (security/groups.xml), as the models name them
in ``groups=`` and ``has_group``; one definition each."""

VIEWER_GROUP = "spp_dci_client_ibr.group_ibr_viewer"
OFFICER_GROUP = "spp_dci_client_ibr.group_ibr_officer"
MANAGER_GROUP = "spp_dci_client_ibr.group_ibr_manager"
PII_GROUP = "spp_dci_client_ibr.group_ibr_pii"  # may read personal data
