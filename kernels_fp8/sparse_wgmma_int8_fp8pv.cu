/* Block-sparse kernel on wgmma (sm_90a): INT8 Q.K^T, FP8 e4m3 P.V (mode INT8_FP8), D = 64 and 128. */
#include "kernels_int8/sparse_wgmma.cuh"
SLA2K_DEFINE_SPARSE_WGMMA(64, 0, 1)
SLA2K_DEFINE_SPARSE_WGMMA(128, 0, 1)
