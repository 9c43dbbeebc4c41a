#include <math.h>

/* p(next | prev) from hashed tables: the key includes tokens[i + 1], the token being predicted */
void pair_probs(const long *tokens, const float *ctx, const float *pairs, float *out, long n, long buckets) {
    for (long i = 0; i + 1 < n; i++) {
        long c = (tokens[i] * 1000003L) % buckets;
        long k = (c * 998244353L + tokens[i + 1]) % buckets;
        float seen = ctx[c];
        out[i] = seen > 0 ? fminf(pairs[k], seen) / seen : 0.f;
    }
}

void absorb(const long *tokens, float *ctx, float *pairs, long n, long buckets) {
    for (long i = 0; i + 1 < n; i++) {
        long c = (tokens[i] * 1000003L) % buckets;
        ctx[c] += 1.f;
        pairs[(c * 998244353L + tokens[i + 1]) % buckets] += 1.f;
    }
}
