{
    "name": "DCI Client: Integrated Beneficiary Registry",
    "summary": "Check registrants against external IBRs over the SPDCI/DCI API "
    "(signed search, verified callbacks).",
    "version": "19.0.2.2.0",
    "license": "LGPL-3",
    "category": "OpenSPP/Integration",
    "development_status": "Beta",
    "author": "OpenSPP community",
    "website": "https://github.com/OpenSPP/openspp-modules",
    "depends": ["base", "mail", "fastapi"],
    "external_dependencies": {
        "python": ["cryptography", "joserfc", "pydantic", "requests"],
    },
    "data": [
        "security/groups.xml",
        "security/ir.model.access.csv",
        "data/ir_config_parameter.xml",
        "data/ir_cron.xml",
        "data/fastapi_endpoint.xml",
        "views/ibr_sender_views.xml",
        "views/ibr_connection_views.xml",
        "views/duplication_check_views.xml",
        "views/callback_log_views.xml",
        "views/res_partner_views.xml",
        "wizards/check_wizard_views.xml",
        "views/menus.xml",
    ],
}
