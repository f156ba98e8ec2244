/* A user's program: built against an installed SDK through find_package or
 * pkg-config, it runs one small attention call. */
#include <sla2/sla2.h>

#include <stdio.h>

int main(void)
{
    enum { L = 70, D = 64 };
    static float q[L * D], k[L * D], v[L * D], o[L * D];
    for (int i = 0; i < L * D; i++)
        q[i] = (float)((i * 37) % 17) / 17.0f, k[i] = (float)((i * 11) % 13) / 13.0f, v[i] = (float)(i % 7);
    sla2_context_options options;
    sla2_context_options_default(&options);
    options.backend = SLA2_BACKEND_CPU;
    sla2_context *ctx = NULL;
    char message[256];
    if (sla2_context_create(&options, &ctx, message, sizeof message) != SLA2_OK) {
        fprintf(stderr, "%s\n", message);
        return 1;
    }
    sla2_attention_config cfg;
    sla2_attention_config_default(&cfg);
    sla2_tensor tq = sla2_tensor_bhld(q, SLA2_DTYPE_F32, 1, 1, L, D), tk = sla2_tensor_bhld(k, SLA2_DTYPE_F32, 1, 1, L, D);
    sla2_tensor tv = sla2_tensor_bhld(v, SLA2_DTYPE_F32, 1, 1, L, D), to = sla2_tensor_bhld(o, SLA2_DTYPE_F32, 1, 1, L, D);
    sla2_status s = sla2_attention_forward(ctx, &cfg, NULL, &tq, &tk, &tv, &to, NULL);
    printf("sla2 %s: %s\n", sla2_version_string(), sla2_status_string(s));
    sla2_context_free(ctx);
    return s == SLA2_OK ? 0 : 1;
}
