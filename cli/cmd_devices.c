/* fp4rt devices: the devices this build can use (the backend registry), and
 * what --device auto picks. */
#include "cli/commands.h"

#include <stdio.h>

#include "runtime/backend/registry.h"

int fp4rt_cmd_devices(int argc, char **argv) {
    if (argc > 1) return fp4rt_cli_unknown("(no options)", argv[1]);
    for (int i = 0; i < fp4rt_registry_count(); i++) {
        const fp4rt_backend_reg *r = fp4rt_registry_get(i);
        if (r->not_built) {
            printf("%-10s not in this build (%s)\n", r->name, r->not_built);
            continue;
        }
        int n = fp4rt_registry_device_count(r);
        if (n == 0) printf("%-10s none: %s\n", r->name, r->unavailable_reason());
        for (int k = 0; k < n; k++) {
            fp4rt_device_desc d;
            if (fp4rt_registry_device(r, k, &d)) continue;
            printf("%-10s %s\n", d.name, d.title);
            for (int j = 0; j < d.n_details; j++) printf("%-10s %s\n", "", d.details[j]);
        }
        char notes[4][FP4RT_DEVICE_LINE];
        int nn = r->notes ? r->notes(notes, 4) : 0;
        for (int j = 0; j < nn; j++) printf("%-10s %s\n", "", notes[j]);
    }
    fp4rt_device_ref best = fp4rt_registry_best(0);
    fp4rt_device_desc d;
    printf("auto       -> %s\n", best.reg && !fp4rt_registry_device(best.reg, best.index, &d) ? d.name : "cpu");
    return 0;
}
