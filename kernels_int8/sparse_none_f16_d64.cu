/* Block-sparse kernel, mode NONE with F16/BF16 inputs: FP16 Q.K^T and P.V, D = 64. */
#include "kernels_int8/sparse_attention.cuh"
SLA2K_DEFINE_SPARSE(64, 1, 0)
