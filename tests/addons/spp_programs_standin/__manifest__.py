# Test-only: models shaped like OpenSPP2's spp_programs (the fields this module
# reads and writes), so the enrolment gate can be tested without OpenSPP.
{
    "name": "Stand-in for OpenSPP programmes (tests only)",
    "summary": "spp.program and spp.program.membership shaped like OpenSPP2's, for tests.",
    "version": "19.0.1.0.0",
    "license": "LGPL-3",
    "category": "Hidden",
    "author": "OpenSPP community",
    "website": "https://github.com/OpenSPP/openspp-modules",
    # base_automation: deployments run automation rules on memberships, and the
    # enrolment gate must survive their re-patching of the model
    "depends": ["base", "mail", "base_automation"],
    "data": ["security/ir.model.access.csv"],
    "installable": True,
}
