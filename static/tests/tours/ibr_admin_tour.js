/** The administrator's path: the IBR sender → Fetch Public Key → its keys;
 * the connection → what the IBR needs from us → Test connection.
 * Driven by tests/test_tours.py. */
import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("spp_dci_ibr_admin_sender", {
    steps: () => [
        {
            content: "Fetch the IBR's public keys from its JWKS",
            trigger: ".o_form_view button[name='action_fetch_public_key']",
            run: "click",
        },
        {
            trigger: ".o_notification:contains(Keys fetched)",
        },
        {
            content: "The key is listed, published",
            trigger: ".o_field_widget[name='key_ids'] .o_data_row:contains(ibr.sim|):contains(Published)",
        },
    ],
});

registry.category("web_tour.tours").add("spp_dci_ibr_admin_connection", {
    steps: () => [
        {
            content: "What the IBR needs from us is on the form",
            trigger: ".o_form_view .o_field_widget[name='our_jwks_url']:contains(/dci_api/)",
        },
        {
            content: "Test the connection",
            trigger: ".o_form_view button[name='action_test_connection']",
            run: "click",
        },
        {
            content: "Signing, the IBR's key and the IBR's acknowledgement all pass",
            trigger: ".o_notification:contains(Connection test passed)",
        },
        {
            content: "...one step a line",
            trigger: ".o_notification.o_spp_dci_ibr_notification .o_notification_content",
            run() {
                const style = getComputedStyle(this.anchor).whiteSpace;
                if (style !== "pre-line") {
                    throw new Error(`the test's lines run together (white-space: ${style})`);
                }
            },
        },
    ],
});
