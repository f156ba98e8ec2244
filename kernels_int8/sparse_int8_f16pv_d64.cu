/* Block-sparse kernel: INT8 Q.K^T, FP16 P.V (mode INT8; INT8_FP8 below sm_89), D = 64. */
#include "kernels_int8/sparse_attention.cuh"
SLA2K_DEFINE_SPARSE(64, 0, 0)
