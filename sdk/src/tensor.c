#include "sla2/sla2.h"

#include <string.h>

size_t sla2_dtype_size(sla2_dtype dtype)
{
    switch (dtype) {
    case SLA2_DTYPE_F32: return 4;
    case SLA2_DTYPE_F16: return 2;
    case SLA2_DTYPE_BF16: return 2;
    }
    return 0;
}

const char *sla2_dtype_name(sla2_dtype dtype)
{
    switch (dtype) {
    case SLA2_DTYPE_F32: return "f32";
    case SLA2_DTYPE_F16: return "f16";
    case SLA2_DTYPE_BF16: return "bf16";
    }
    return "unknown";
}

static sla2_tensor view4(void *data, sla2_dtype dtype, int64_t B, int64_t H, int64_t L, int64_t D,
                         int64_t stride_b, int64_t stride_h, int64_t stride_l)
{
    sla2_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dtype;
    t.ndim = 4;
    t.shape[0] = B, t.shape[1] = H, t.shape[2] = L, t.shape[3] = D;
    t.stride[0] = stride_b, t.stride[1] = stride_h, t.stride[2] = stride_l, t.stride[3] = 1;
    return t;
}

sla2_tensor sla2_tensor_bhld(void *data, sla2_dtype dtype, int64_t B, int64_t H, int64_t L, int64_t D)
{
    return view4(data, dtype, B, H, L, D, H * L * D, L * D, D);
}

sla2_tensor sla2_tensor_blhd(void *data, sla2_dtype dtype, int64_t B, int64_t H, int64_t L, int64_t D)
{
    return view4(data, dtype, B, H, L, D, L * H * D, D, H * D);
}

sla2_tensor sla2_tensor_contiguous(void *data, sla2_dtype dtype, int ndim, const int64_t *shape)
{
    sla2_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dtype;
    if (ndim < 1 || ndim > SLA2_MAX_DIMS || !shape)
        return t; /* ndim 0: rejected by every consumer */
    t.ndim = ndim;
    int64_t stride = 1;
    for (int d = ndim - 1; d >= 0; d--) {
        t.shape[d] = shape[d];
        t.stride[d] = stride;
        stride *= shape[d];
    }
    return t;
}
