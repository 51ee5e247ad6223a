# Test-only: models shaped like OpenSPP2's spp_registry (the fields this module
# reads: reg_ids on the registrant, their ID type's code, value and status), so
# the OpenSPP identifier path can be tested and measured without OpenSPP.
{
    "name": "Stand-in for OpenSPP registry IDs (tests only)",
    "summary": "spp.registry.id, spp.vocabulary.code and reg_ids shaped like OpenSPP2's.",
    "version": "19.0.1.0.0",
    "license": "LGPL-3",
    "category": "Hidden",
    "author": "OpenSPP community",
    "website": "https://github.com/OpenSPP/openspp-modules",
    "depends": ["base"],
    "data": ["security/ir.model.access.csv"],
    "installable": True,
}
