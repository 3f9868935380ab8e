/* fp4rt env: every environment knob (runtime/base/env_knobs.h) with its type,
 * default, current value and documentation. */
#include "cli/commands.h"

#include "runtime/base/env.h"

#include <stdio.h>
#include <string.h>

int fp4rt_cmd_env(int argc, char **argv) {
    (void)argv;
    if (argc != 1) return fp4rt_cli_usage("env", "");
    const fp4rt_env_knob *t = fp4rt_env_table();
    fp4rt_env_state st;
    extern char **environ;
    fp4rt_env_parse(environ, &st, 0);
    printf("%-24s %-6s %-8s %s\n", "variable", "type", "default", "value");
    for (int id = 0; id < FP4RT_ENV_COUNT; id++) {
        const char *raw = st.raw[id];
        printf("%-24s %-6s %-8s %s%s\n", t[id].name, fp4rt_env_type_name(t[id].type), t[id].def[0] ? t[id].def : "-",
               !raw ? "(unset)" : raw[0] ? raw : "(empty: the default)",
               st.malformed[id] ? "  (malformed: the default is used)" : "");
        printf("    %s%s%s\n", t[id].choices[0] ? t[id].choices : "", t[id].choices[0] ? ": " : "", t[id].doc);
    }
    if (st.n_unknown) {
        printf("unknown FP4RT_* variables (ignored):");
        for (char **e = environ; *e; e++) {
            const char *eq = strchr(*e, '=');
            if (eq && !strncmp(*e, "FP4RT_", 6) && !fp4rt_env_known(*e, (size_t)(eq - *e)))
                printf(" %.*s", (int)(eq - *e), *e);
        }
        printf("\n");
    }
    fp4rt_env_state_clear(&st);
    return 0;
}
