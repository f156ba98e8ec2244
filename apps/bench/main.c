/* sla2-bench: benchmarks of the SLA2 SDK, one subcommand each. */
#include "bench.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *to)
{
    fprintf(to, "usage: sla2-bench <subcommand> [options]   (sla2-bench <subcommand> --help for its options)\n"
                "  attention  the SLA2 operator on the GPU at Wan2.1's shapes, against dense%s\n"
                "  model      one Wan2.1 DiT forward (random weights), dense against SLA2, with a per-operator\n"
                "             breakdown and the weights' memory (--backend cpu|cuda, --weights-storage f32|int8|fp8|bf16|fp8_gemm)\n",
#ifdef SLA2_BENCH_CUDA
                ""
#else
                " (not in this build: no CUDA)"
#endif
    );
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(sub, "model"))
        return bench_model_main(argc - 1, argv + 1);
    if (!strcmp(sub, "attention")) {
#ifdef SLA2_BENCH_CUDA
        return bench_attention_main(argc - 1, argv + 1);
#else
        fprintf(stderr, "sla2-bench attention: this build has no CUDA backend (configure with -DSLA2_CUDA=ON)\n");
        return 2;
#endif
    }
    fprintf(stderr, "sla2-bench: unknown subcommand '%s' (expected attention or model; see sla2-bench --help)\n", sub);
    return 2;
}
