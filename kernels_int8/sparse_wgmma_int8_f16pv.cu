/* Block-sparse kernel on wgmma (sm_90a): INT8 Q.K^T, FP16 P.V (mode INT8), D = 64 and 128. */
#include "kernels_int8/sparse_wgmma.cuh"
SLA2K_DEFINE_SPARSE_WGMMA(64, 0, 0)
SLA2K_DEFINE_SPARSE_WGMMA(128, 0, 0)
