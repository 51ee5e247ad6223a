/** Reloads the view on screen when the server says an IBR answer changed
 * what it shows (bus message "spp_dci_ibr/changed", models/notify.py), so a
 * list of checks, a batch or a registrant never needs a manual reload. */
import { registry } from "@web/core/registry";

const WAIT_MS = 800; // a burst of answers reloads once

export const ibrLiveViewsService = {
    dependencies: ["bus_service", "action"],
    start(env, { bus_service, action }) {
        let timer = null;
        const changed = new Set();
        function reload() {
            timer = null;
            const controller = action.currentController;
            const model = controller?.props?.resModel;
            const concerned = model && changed.has(model);
            changed.clear();
            // unsaved edits and open dialogs are never disturbed
            if (!concerned || document.querySelector(".o_form_dirty, .modal")) {
                return;
            }
            action.restore(controller.jsId);
        }
        bus_service.subscribe("spp_dci_ibr/changed", ({ models }) => {
            models.forEach((model) => changed.add(model));
            timer ??= setTimeout(reload, WAIT_MS);
        });
        bus_service.start();
    },
};

registry.category("services").add("spp_dci_ibr_live_views", ibrLiveViewsService);
