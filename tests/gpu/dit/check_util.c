#include "check_util.h"

#include <math.h>

double rel_l2(const float *a, const float *ref, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - ref[i];
        num += isfinite(a[i]) ? d * d : INFINITY;
        den += (double)ref[i] * ref[i];
    }
    return sqrt(num / (den > 0.0 ? den : 1.0));
}

double cosine(const float *a, const float *b, size_t n)
{
    double ab = 0.0, aa = 0.0, bb = 0.0;
    for (size_t i = 0; i < n; i++)
        ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return ab / sqrt(aa * bb > 0.0 ? aa * bb : 1.0);
}

int all_finite(const float *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a[i]))
            return 0;
    return 1;
}

int small_int(uint64_t *state, int range)
{
    *state = *state * 6364136223846793005ull + 1442695040888963407ull;
    return (int)((*state >> 33) % (uint64_t)(2 * range + 1)) - range;
}

float gaussian(uint64_t *state)
{
    float s = 0.0f;
    for (int j = 0; j < 4; j++)
        s += (float)small_int(state, 1 << 20) / (float)(1 << 21);
    return s * 1.7320508f;
}
