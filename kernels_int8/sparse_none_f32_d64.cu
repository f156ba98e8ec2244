/* Block-sparse kernel, mode NONE with F32 inputs: Q.K^T as three FP16
 * products (hi.hi + hi.lo + lo.hi, about FP32 accuracy), FP16 P.V, D = 64. */
#include "kernels_int8/sparse_attention.cuh"
SLA2K_DEFINE_SPARSE(64, 2, 0)
