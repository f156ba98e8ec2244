/* The subcommands of sla2-bench (main.c dispatches on argv[1]). Each gets
 * argv from its own name on, and returns the process's exit status. */
#ifndef SLA2_BENCH_H
#define SLA2_BENCH_H

/* sla2-bench attention: the SLA2 operator on the GPU (bench_attention.cu;
 * CUDA builds only). */
int bench_attention_main(int argc, char **argv);
/* sla2-bench model: one DiT forward, dense against SLA2 (bench_model.c). */
int bench_model_main(int argc, char **argv);

#endif
