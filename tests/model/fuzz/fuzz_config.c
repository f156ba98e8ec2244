/* libFuzzer target for the YAML configs (not built by CMake; see README.md
 * in this folder). The first byte picks the model or the runtime schema. */
#include "model/config.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char err[512];
    if (size == 0)
        return 0;
    const char *text = (const char *)data + 1;
    if (data[0] & 1) {
        sla2_model_config c;
        if (sla2_model_config_parse(text, size - 1, "fuzz", &c, err, sizeof err) == SLA2_OK) {
            if (sla2_model_config_tokens(&c, NULL) <= 0)
                abort();
            sla2_model_config_free(&c);
        }
    } else {
        sla2_runtime_config r;
        if (sla2_runtime_config_parse(text, size - 1, "fuzz", &r, err, sizeof err) == SLA2_OK)
            sla2_runtime_config_free(&r);
    }
    return 0;
}
