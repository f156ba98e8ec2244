/* Block-sparse kernel: INT8 Q.K^T, FP8 P.V computed on FP16 mma.sync with
 * e4m3-rounded operands (mode INT8_FP8 on sm_90), D = 128. */
#include "kernels_int8/sparse_attention.cuh"
SLA2K_DEFINE_SPARSE(128, 0, 2)
