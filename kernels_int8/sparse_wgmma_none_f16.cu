/* Block-sparse kernel on wgmma (sm_90a), mode NONE with F16/BF16 inputs: FP16 Q.K^T and P.V, D = 64 and 128. */
#include "kernels_int8/sparse_wgmma.cuh"
SLA2K_DEFINE_SPARSE_WGMMA(64, 1, 0)
SLA2K_DEFINE_SPARSE_WGMMA(128, 1, 0)
