/* libFuzzer target for the safetensors reader (not built by CMake; see
 * README.md in this folder). Every accepted file must be self-consistent. */
#include "model/safetensors.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    char err[512];
    sla2_safetensors *st = NULL;
    if (sla2_safetensors_open_memory(data, size, "fuzz", &st, err, sizeof err) != SLA2_OK)
        return 0;
    for (size_t i = 0; i < sla2_safetensors_count(st); i++) {
        const sla2_st_tensor *t = sla2_safetensors_at(st, i);
        if (sla2_safetensors_find(st, t->name) != t || t->data_end > size)
            abort();
        if (t->num_elems < (1u << 20)) {
            float *out = malloc((size_t)t->num_elems * sizeof *out + 1);
            if (sla2_safetensors_read_f32(st, t, out, (size_t)t->num_elems, err, sizeof err) != SLA2_OK)
                abort();
            free(out);
        }
    }
    sla2_safetensors_close(st);
    return 0;
}
